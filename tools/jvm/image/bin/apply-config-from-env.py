#!/usr/bin/env python3
"""magnetar's test image: stands in for the Pulsar image's
bin/apply-config-from-env.py (written from its documented behaviour).

    apply-config-from-env.py [--prefix PULSAR_PREFIX_] FILE...

For each properties FILE, in place:

1. Every line `key=value` -- or a commented-out `#key=value` -- whose key is
   the name of an environment variable becomes `key=<that variable's value>`
   (so a commented-out default is switched on). When a key appears on several
   lines, the last one is the one set.
2. A blank line is added at the end of the file.
3. Every variable `<prefix><key>` (PULSAR_PREFIX_ by default) sets `key`: it
   replaces the line of step 1 for that key, or is appended as `key=value`.

Values are stripped of surrounding white space. Each change is reported on
stdout as `[FILE] Applying|Updating|Adding config key = value`, with the value
masked for passwords and secrets.
"""

import argparse
import os
import sys

SECRET_KEYS = {
    "brokerClientAuthenticationParameters",
    "bookkeeperClientAuthenticationParameters",
    "tokenSecretKey",
}


def shown(key, value):
    if "password" in key.lower() or key in SECRET_KEYS:
        return "********"
    return value


def key_lines(lines):
    """Key -> index of the last line that sets it (commented out or not)."""
    index = {}
    for i, raw in enumerate(lines):
        text = raw.strip()
        if "=" not in text:
            continue
        key = text.split("=", 1)[0]
        if key.startswith("#"):
            key = key[1:]
        index[key.strip()] = i
    return index


def apply(path, env, prefix):
    with open(path, encoding="utf-8") as f:
        lines = f.readlines()
    index = key_lines(lines)

    for name in sorted(env):
        if name in index:
            value = env[name].strip()
            print("[%s] Applying config %s = %s" % (path, name, shown(name, value)))
            lines[index[name]] = "%s=%s\n" % (name, value)

    lines.append("\n")

    for name in sorted(env):
        if not name.startswith(prefix):
            continue
        key = name[len(prefix):]
        value = env[name].strip()
        if key in index:
            print("[%s] Updating config %s = %s" % (path, key, shown(key, value)))
            lines[index[key]] = "%s=%s\n" % (key, value)
        else:
            print("[%s] Adding config %s = %s" % (path, key, shown(key, value)))
            lines.append("%s=%s\n" % (key, value))

    with open(path, "w", encoding="utf-8") as f:
        f.writelines(lines)


def main():
    parser = argparse.ArgumentParser(
        description="Set properties in Pulsar configuration files from environment variables")
    parser.add_argument("--prefix", default="PULSAR_PREFIX_",
                        help="prefix of the variables that add or replace keys (default PULSAR_PREFIX_)")
    parser.add_argument("conf_files", nargs="*", help="configuration files, changed in place")
    args = parser.parse_args()
    if not args.conf_files:
        parser.print_help()
        return 1
    env = dict(os.environ)
    for path in args.conf_files:
        apply(path, env, args.prefix)
    return 0


if __name__ == "__main__":
    sys.exit(main())
