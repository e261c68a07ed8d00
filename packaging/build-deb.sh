#!/usr/bin/env bash
# .deb packages for amd64, arm64 and armhf from the binaries packaging/build-release.sh built
# (cargo deb --no-build: cargo-deb only packs, so the packages hold exactly the binaries the
# smoke test ran). Metadata: [package.metadata.deb] in Cargo.toml, files in packaging/debian/.
#
#   packaging/build-release.sh && packaging/build-deb.sh
#
# Results: target/debian/nightlite_<version>-1_<arch>.deb
set -euo pipefail
cd "$(dirname "$0")/.."

# Rust target -> Debian architecture, for the packages nightlite ships.
TARGETS=${NIGHTLITE_DEB_TARGETS:-"x86_64-unknown-linux-gnu:amd64 aarch64-unknown-linux-gnu:arm64 armv7-unknown-linux-gnueabihf:armhf"}
OUT=target/debian

if ! command -v cargo-deb >/dev/null; then
  echo "== cargo install cargo-deb --version 3.8.0 --locked"
  cargo install cargo-deb --version 3.8.0 --locked # the version the checks were written against
fi

# For a foreign architecture, cargo-deb's "$auto" asks dpkg-shlibdeps about Debian's cross libc
# (libc6-arm64-cross), which yields "libc6:arm64 (>= <that package's version>)": an
# architecture-qualified and needlessly high requirement. dpkg-shlibdeps on the host
# architecture takes the bound from the glibc symbol versions the binary uses; do the same for
# the others, from the binary itself, and repack.
fix_depends() {
  local deb=$1 bin=$2 depends glibc tmp
  depends=$(dpkg-deb -f "$deb" Depends)
  case "$depends" in *:*) ;; *) return 0 ;; esac
  glibc=$(readelf -V "$bin" | grep -o 'GLIBC_[0-9.]*' | sort -Vu | tail -n1)
  [ -n "$glibc" ] || {
    echo "build-deb: $bin uses no versioned glibc symbols" >&2
    exit 1
  }
  tmp=$(mktemp -d)
  dpkg-deb -R "$deb" "$tmp/pkg"
  sed -i "s/^Depends: .*/Depends: libc6 (>= ${glibc#GLIBC_})/" "$tmp/pkg/DEBIAN/control"
  dpkg-deb -b --root-owner-group "$tmp/pkg" "$deb" >/dev/null
  rm -rf "$tmp"
}

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
host=$(rustc -vV | sed -n 's/^host: //p')
mkdir -p "$OUT"
for pair in $TARGETS; do
  t=${pair%%:*}
  arch=${pair#*:}
  # The host build lives in target/release (build-release.sh shares it with plain
  # `cargo build --release`), which is where cargo-deb looks when given no --target.
  if [ "$t" = "$host" ]; then target_args=(); else target_args=(--target "$t"); fi
  bin=target/${target_args[1]:-}${target_args[1]:+/}release/nightlite
  [ -x "$bin" ] || {
    echo "build-deb: no $bin; run packaging/build-release.sh first" >&2
    exit 1
  }
  deb=$OUT/nightlite_${version}-1_$arch.deb
  # --no-strip: cargo already stripped it (profile.release strip = true), and the host strip
  # cannot read ARM binaries anyway.
  cargo deb --locked --no-build --no-strip "${target_args[@]}" --output "$deb" >/dev/null
  fix_depends "$deb" "$bin"
  [ "$(dpkg-deb -f "$deb" Architecture)" = "$arch" ] || {
    echo "build-deb: $deb is for $(dpkg-deb -f "$deb" Architecture), not $arch" >&2
    exit 1
  }
  printf '%-48s %9s bytes  Depends: %s\n' "$deb" "$(stat -c %s "$deb")" "$(dpkg-deb -f "$deb" Depends)"
done
