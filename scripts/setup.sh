#!/usr/bin/env bash
# Machine setup devflow needs beyond npm packages, run by `npm install`/`npm ci` (postinstall).
# tmux drives agent sessions; when it is missing and we are root, install it from Debian's packages.
set -u
if command -v tmux >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "devflow setup: tmux is missing; installing it with apt-get"
  if apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tmux >/dev/null; then
    echo "devflow setup: installed $(tmux -V)"
    exit 0
  fi
  echo "devflow setup: apt-get could not install tmux" >&2
fi
echo "devflow setup: tmux is not installed; agent sessions need it. Install it (e.g. sudo apt-get install -y tmux)." >&2
exit 0
