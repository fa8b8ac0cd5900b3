"""Routes of cases II (documents): filled in by its work; an empty router until then."""

from fastapi import APIRouter

router = APIRouter()
