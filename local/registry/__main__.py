"""Serve the stand-in registry: ``python -m local.registry --port 8081 [options]``.

Single-registry mode (the default): Ninh Bình at the root, with ``--records`` S&T tasks.
Profile mode (``--profile demo|national``): the profile's registries (or ``--registries a,b``),
each under ``/r/<registry_id>`` with client id ``<client-id>-<registry_id>``.

Client secrets are read from the environment, never from the command line (other local users
could read it from the process list): STANDIN_REGISTRY_CLIENT_SECRET, and in profile mode
STANDIN_REGISTRY_CLIENT_SECRET_<REGISTRY_ID> per registry (falling back to the first).

Change events (local/registry/events.py): with ``--events-intake URL``, each registry named by
``--events-subscription <registry_id>=<subscription>`` (the single-registry mode's id is
ninh_binh) sends a signed event per record ``POST /_standin/changes`` changes, with the
secret in STANDIN_REGISTRY_EVENTS_SECRET_<REGISTRY_ID> (environment only, like the client
secrets). Without them, no events are sent.
"""

from __future__ import annotations

import argparse
import logging
import os

from local.registry import SECRET_ENV, registry_secret_env
from local.registry.app import RegistrySettings, create_app, create_multi_app
from local.registry.events import settings_from
from local.registry.profiles import load_profiles
from local.registry.registries import LEGACY_REGISTRY
from local.standin_http import run

log = logging.getLogger("local.registry")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local.registry",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--records", type=int, default=500, help="number of S&T tasks")
    parser.add_argument("--seed", type=int, default=None, help="default 42, or the profile's")
    parser.add_argument("--bad-share", type=float, default=0.05, help="share of bad records")
    parser.add_argument("--token-ttl", type=int, default=3600, help="token lifetime, seconds")
    parser.add_argument("--client-id", default="sti-pipeline-local")
    parser.add_argument("--profile", help="serve a profile of local/registry/profiles.yml")
    parser.add_argument(
        "--registries", help="comma-separated registry ids (default: the profile's)"
    )
    parser.add_argument("--events-intake", help="the event intake's URL, e.g. http://host:8090")
    parser.add_argument(
        "--events-subscription",
        action="append",
        default=[],
        metavar="REGISTRY_ID=SUBSCRIPTION",
        help="send the change events of a registry as this subscription (repeatable)",
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    args = parser.parse_args(argv)
    if args.records < 0:
        parser.error("--records must be >= 0")
    if not 0.0 <= args.bad_share <= 1.0:
        parser.error("--bad-share must be within 0..1")
    if args.token_ttl < 1:
        parser.error("--token-ttl must be >= 1")
    if args.registries and not args.profile:
        parser.error("--registries needs --profile")
    if args.profile:
        profiles = load_profiles()
        try:
            profile = profiles.profile(args.profile)
            ids = args.registries.split(",") if args.registries else list(profile.registries)
            for registry_id in ids:
                profiles.registry(registry_id)
        except ValueError as error:
            parser.error(str(error))
        args.registry_ids = ids
        missing = [
            i for i in ids if not os.environ.get(registry_secret_env(i), os.environ.get(SECRET_ENV))
        ]
        if missing:
            parser.error(
                f"set the client secret of {', '.join(missing)} in the environment "
                f"({registry_secret_env(missing[0])} or {SECRET_ENV})"
            )
    elif not os.environ.get(SECRET_ENV):
        parser.error(f"set the client secret in the environment variable {SECRET_ENV}")
    served = args.registry_ids if args.profile else [LEGACY_REGISTRY]
    subscriptions = {}
    for item in args.events_subscription:
        registry_id, equals, subscription = item.partition("=")
        if not equals or not subscription or registry_id not in served:
            parser.error(
                f"--events-subscription {item!r}: give <registry_id>=<subscription> for one of"
                f" {', '.join(served)}"
            )
        subscriptions[registry_id] = subscription
    try:
        args.events = settings_from(args.events_intake, subscriptions, os.environ)
    except ValueError as error:
        parser.error(str(error))
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s: %(message)s")
    if args.profile:
        registries = {
            registry_id: RegistrySettings(
                seed=args.seed,
                token_ttl=args.token_ttl,
                client_id=f"{args.client_id}-{registry_id}",
                client_secret=os.environ.get(registry_secret_env(registry_id))
                or os.environ[SECRET_ENV],
                profile=args.profile,
                registry_id=registry_id,
                events=args.events.get(registry_id),
            )
            for registry_id in args.registry_ids
        }
        # Never log the secrets or tokens; the settings' repr leaves the secret out.
        log.info(
            "stand-in registries %s (profile %s) on http://%s:%d/r/<id>",
            ", ".join(registries),
            args.profile,
            args.host,
            args.port,
        )
        app = create_multi_app(registries)
    else:
        settings = RegistrySettings(
            records=args.records,
            seed=42 if args.seed is None else args.seed,
            bad_share=args.bad_share,
            token_ttl=args.token_ttl,
            client_id=args.client_id,
            client_secret=os.environ[SECRET_ENV],
            events=args.events.get(LEGACY_REGISTRY),
        )
        log.info("stand-in registry on http://%s:%d with %r", args.host, args.port, settings)
        app = create_app(settings)
    for registry_id, events in args.events.items():
        log.info("%s sends change events to %s", registry_id, events.endpoint)
    run(app, host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
