#!/usr/bin/env bash
# Install the cattle-cni executable and a link per plugin name, atomically:
# every file is written under a temporary name in the target directory and
# renamed into place, so a runtime starting a pod never sees a half-written
# plugin. Optionally install a network config from conf-examples.
#
#   scripts/install.sh [--bin-dir DIR] [--conf FILE --conf-dir DIR]
#   defaults: --bin-dir /opt/cni/bin, --conf-dir /etc/cni/net.d
set -euo pipefail
cd "$(dirname "$0")/.."

bin_dir=/opt/cni/bin
conf_dir=/etc/cni/net.d
conf=""
while [ $# -gt 0 ]; do
  case "$1" in
    --bin-dir) bin_dir="$2"; shift 2 ;;
    --conf-dir) conf_dir="$2"; shift 2 ;;
    --conf) conf="$2"; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

src=dist/bin/cattle-cni
[ -x "$src" ] || { echo "install.sh: $src missing: run npm run build first" >&2; exit 1; }
mkdir -p "$bin_dir"

# The executable: copy to a temporary name beside the target, then rename.
tmp="$bin_dir/.cattle-cni.$$"
trap 'rm -f "$tmp" "$bin_dir"/.cattle-link.$$ 2>/dev/null || true' EXIT
cp "$src" "$tmp"
chmod 0755 "$tmp"
mv -f "$tmp" "$bin_dir/cattle-cni"

# A link per name; `mv -T` replaces an existing link (or file) in one rename.
for name in $("$bin_dir/cattle-cni" names); do
  [ "$name" = cattle-cni ] && continue
  ln -sfn cattle-cni "$bin_dir/.cattle-link.$$"
  mv -Tf "$bin_dir/.cattle-link.$$" "$bin_dir/$name"
  echo "installed $bin_dir/$name -> cattle-cni"
done
echo "installed $bin_dir/cattle-cni ($("$bin_dir/cattle-cni" version))"

if [ -n "$conf" ]; then
  [ -f "$conf" ] || conf="conf-examples/$conf"
  [ -f "$conf" ] || { echo "install.sh: no such config $conf" >&2; exit 1; }
  mkdir -p "$conf_dir"
  target="$conf_dir/$(basename "$conf")"
  cp "$conf" "$target.$$"
  chmod 0644 "$target.$$"
  mv -f "$target.$$" "$target"
  echo "installed $target"
fi
