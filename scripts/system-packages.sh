#!/usr/bin/env bash
# Installs the Debian packages listed in the given files (one name per line, # comments) that are
# not installed yet. Needs root (or sudo); does nothing when everything is there.
set -euo pipefail
missing=()
for list in "$@"; do
  while read -r name; do
    name=${name%%#*}; name=${name// /}
    [[ -z "$name" ]] && continue
    dpkg-query -W -f='${Status}' "$name" 2>/dev/null | grep -q "install ok installed" || missing+=("$name")
  done <"$list"
done
(( ${#missing[@]} == 0 )) && exit 0
echo "==> installing Debian packages: ${missing[*]}"
sudo=""
[[ $(id -u) -ne 0 ]] && sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
