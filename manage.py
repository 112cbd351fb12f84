#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.config.settings")
    # From a second shell while `make run` runs: its services' addresses (see deploy/run_env.py).
    from deploy.run_env import load_run_env

    load_run_env()
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
