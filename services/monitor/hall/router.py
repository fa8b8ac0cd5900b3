"""Routes of supervision II (hall): filled in by its work; an empty router until then."""

from fastapi import APIRouter

router = APIRouter(tags=["supervision"])
