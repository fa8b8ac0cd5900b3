"""Routes of cases II (intake): filled in by its work; an empty router until then."""

from fastapi import APIRouter

router = APIRouter()
