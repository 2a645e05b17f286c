"""``uv run playground``: serve the chat page and its streaming backend with one command."""

import argparse
import logging
import re
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from mongodb_session_manager.demo_model import create_model, describe_model

from .app import create_app
from .config import Settings

__all__ = ["create_app", "describe_uri", "main"]

_CREDENTIALS = re.compile(r"//[^@/]*@")


def describe_uri(uri: str) -> str:
    """Return ``uri`` without credentials and options, safe to print."""
    return _CREDENTIALS.sub("//", uri.split("?", 1)[0])


def main(argv: Sequence[str] | None = None) -> int:
    """Say which MongoDB and model the playground uses and where to open it, then serve it with uvicorn."""
    parser = argparse.ArgumentParser(prog="playground", description="Chat playground for mongodb-session-manager")
    parser.add_argument("--host", help="interface to listen on (default: PLAYGROUND_HOST, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default: PLAYGROUND_PORT, 8880)")
    args = parser.parse_args(argv)

    try:
        settings = Settings()
    except ValidationError as error:
        messages = "; ".join(f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in error.errors())
        print(f"playground: invalid configuration: {messages}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    if settings.mongodb_uri:
        print(f"playground: MongoDB at {describe_uri(settings.mongodb_uri)}", file=sys.stderr)
    else:
        from mongodb_session_manager.embedded import ensure_embedded_server

        uri = ensure_embedded_server()
        print(
            f"playground: no MONGODB_URI set; using the embedded development MongoDB server at {uri} "
            "(data under MONGODB_SESSION_MANAGER_DATA_DIR or ./.mongodb-session-manager/)",
            file=sys.stderr,
        )
        settings = settings.model_copy(update={"mongodb_uri": uri})
    model = create_model()
    print(f"playground: model: {describe_model(model)}", file=sys.stderr)
    print(
        f"playground: sessions in {settings.database_name}.{settings.collection_name} (browse them with "
        f"DATABASE_NAME={settings.database_name} COLLECTION_NAME={settings.collection_name} uv run session-viewer)",
        file=sys.stderr,
    )

    import uvicorn

    host = args.host or settings.host
    port = args.port if args.port is not None else settings.port
    print(f"playground: open http://{host}:{port}/chat.html", file=sys.stderr)
    uvicorn.run(create_app(settings, model=model), host=host, port=port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
