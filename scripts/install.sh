#!/usr/bin/env bash
# Installs the cattle-cni executable and a link per plugin name, atomically:
# every file is written under a temporary name in the target directory and
# renamed into place, so a runtime starting a pod never sees a half-written
# plugin. Every argument is checked before anything is written.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  cat <<'EOF'
usage: scripts/install.sh [--bin-dir DIR] [--conf FILE]... [--conf-dir DIR]

Installs dist/bin/cattle-cni (run `npm run build` first) and a link per plugin
name into the bin directory, each by writing a temporary file and renaming it.

  --bin-dir DIR    where the plugins go (default /opt/cni/bin)
  --conf FILE      also install this network configuration; FILE is a path, or
                   a name under conf-examples/ (e.g. 10-cattle-bridge.conflist,
                   podman/87-cattle-bridge.conflist); may be given more than once
  --conf-dir DIR   where --conf files go (default /etc/cni/net.d)
  -h, --help       this text

Environment: CATTLE_CNI_BIN installs from another build directory (default
dist/bin). Exit status: 0 installed, 1 failed, 2 usage error; on any error
nothing has been installed.
EOF
}

die() { # die <status> <message>
  echo "install.sh: $2" >&2
  [ "$1" != 2 ] || echo "install.sh: see scripts/install.sh --help" >&2
  exit "$1"
}

bin_dir=/opt/cni/bin
conf_dir=/etc/cni/net.d
conf_dir_given=""
confs=()
# The value of an option: present, not empty, not the next option.
value() { # value <option> <what> <remaining argument count> [value]
  [ "$3" -ge 2 ] && [ -n "${4:-}" ] && [ "${4:0:2}" != -- ] || die 2 "$1 needs $2, e.g. $1 $(example "$1")"
}
example() {
  case "$1" in
    --bin-dir) echo /opt/cni/bin ;;
    --conf-dir) echo /etc/cni/net.d ;;
    --conf) echo 10-cattle-bridge.conflist ;;
  esac
}
while [ $# -gt 0 ]; do
  case "$1" in
    --bin-dir) value "$1" "a directory" $# "${2:-}"; bin_dir=$2; shift 2 ;;
    --conf-dir) value "$1" "a directory" $# "${2:-}"; conf_dir=$2; conf_dir_given=1; shift 2 ;;
    --conf) value "$1" "a file" $# "${2:-}"; confs+=("$2"); shift 2 ;;
    --bin-dir=*|--conf-dir=*|--conf=*) set -- "${1%%=*}" "${1#*=}" "${@:2}" ;;
    -h|--help) usage; exit 0 ;;
    *) die 2 "unknown argument \"$1\"" ;;
  esac
done
[ ${#confs[@]} -gt 0 ] || [ -z "$conf_dir_given" ] || die 2 "--conf-dir without --conf: give the configuration to install with --conf FILE"

# A directory we can create or write: it exists as a directory, or its nearest
# existing ancestor is one we can write into.
check_dir() { # check_dir <option> <dir>
  local d=$2
  if [ -e "$d" ] && [ ! -d "$d" ]; then die 1 "$1 $d is not a directory"; fi
  while [ ! -e "$d" ]; do d=$(dirname "$d"); done
  [ -d "$d" ] || die 1 "$1 $2: $d is not a directory"
  [ -w "$d" ] || die 1 "cannot write to $d (for $1 $2): run as root (sudo scripts/install.sh …) or choose another $1"
}

src_dir=${CATTLE_CNI_BIN:-dist/bin}
src=$src_dir/cattle-cni
[ -f "$src" ] && [ -x "$src" ] || die 1 "$src missing: run npm run build first"
names=$("$src" names) || die 1 "$src does not run (\`$src names\` failed): rebuild with npm run build"
check_dir --bin-dir "$bin_dir"

# Each configuration: found, readable, JSON with a network name; two with the same file name would overwrite each other.
resolved=()
json_check=""
for n in node_modules/.bin/node node; do
  if command -v "$n" >/dev/null 2>&1; then json_check=$n; break; fi
done
for conf in "${confs[@]}"; do
  file=$conf
  tried=$conf
  if [ ! -f "$file" ] && [ "${conf#/}" = "$conf" ]; then file=conf-examples/$conf; tried="$conf and $file"; fi
  if [ ! -f "$file" ]; then
    examples=$(cd conf-examples && find . -type f \( -name '*.conflist' -o -name '*.conf' \) | sed 's|^\./||' | sort | tr '\n' ' ')
    die 1 "no such configuration \"$conf\" (tried $tried); the examples in conf-examples/: ${examples% }"
  fi
  [ -r "$file" ] || die 1 "cannot read $file"
  if [ -n "$json_check" ]; then
    problem=$("$json_check" -e '
      const f = process.argv[1];
      let c;
      try { c = JSON.parse(require("fs").readFileSync(f, "utf8")); } catch (e) { console.log(`not JSON: ${e.message}`); process.exit(0); }
      if (typeof c !== "object" || c === null || Array.isArray(c)) console.log("not a JSON object");
      else if (typeof c.name !== "string" || c.name === "") console.log("no network \"name\"");
      else if (!Array.isArray(c.plugins) && typeof c.type !== "string") console.log("neither \"plugins\" (a .conflist) nor \"type\" (a .conf)");
    ' "$file") || die 1 "could not check $file"
    [ -z "$problem" ] || die 1 "$file is not a network configuration: $problem"
  fi
  for other in "${resolved[@]}"; do
    [ "$(basename "$other")" != "$(basename "$file")" ] || die 2 "--conf $other and --conf $file would both install $(basename "$file")"
  done
  resolved+=("$file")
done
[ ${#resolved[@]} -eq 0 ] || check_dir --conf-dir "$conf_dir"

# Everything checked: install.
mkdir -p "$bin_dir"
tmp="$bin_dir/.cattle-cni.$$"
link="$bin_dir/.cattle-link.$$"
conf_tmp=""
trap 'rm -f "$tmp" "$link" ${conf_tmp:+"$conf_tmp"} 2>/dev/null || true' EXIT

# The executable: copy to a temporary name beside the target, then rename.
cp "$src" "$tmp"
chmod 0755 "$tmp"
mv -f "$tmp" "$bin_dir/cattle-cni"

# A link per name; `mv -T` replaces an existing link (or file) in one rename.
for name in $names; do
  [ "$name" = cattle-cni ] && continue
  ln -sfn cattle-cni "$link"
  mv -Tf "$link" "$bin_dir/$name"
  echo "installed $bin_dir/$name -> cattle-cni"
done
echo "installed $bin_dir/cattle-cni ($("$bin_dir/cattle-cni" version))"

if [ ${#resolved[@]} -gt 0 ]; then
  mkdir -p "$conf_dir"
  for file in "${resolved[@]}"; do
    target="$conf_dir/$(basename "$file")"
    conf_tmp="$target.$$"
    cp "$file" "$conf_tmp"
    chmod 0644 "$conf_tmp"
    mv -f "$conf_tmp" "$target"
    conf_tmp=""
    echo "installed $target"
  done
fi
