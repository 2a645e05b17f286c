"""``python -m mongodb_session_manager``: the same command line as the ``mongodb-session-manager`` script."""

from .cli import main

if __name__ == "__main__":
    main()
