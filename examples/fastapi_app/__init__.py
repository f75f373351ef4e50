"""A small FastAPI service on asyncorm: authors and their books.

``create_app(database_url)`` builds the app (see app.py); models.py holds the tables,
schemas.py the Pydantic bodies, routes.py the endpoints and the ``get_session`` dependency.
"""

from .app import create_app
from .routes import get_session

__all__ = ["create_app", "get_session"]
