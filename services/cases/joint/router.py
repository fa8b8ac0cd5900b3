"""Routes of cases II (joint): filled in by its work; an empty router until then."""

from fastapi import APIRouter

router = APIRouter()
