#!/bin/bash
# fetch-kernel.sh GEN WORKDIR : downloads Debian's current kernel of one
# generation with apt-get download and unpacks it into WORKDIR/kstage (image
# and modules) and WORKDIR/hstage (headers, kbuild). Never pinned: the
# version is resolved at run time from the suite that ships the generation.
#   GEN 6.1   bookworm (the machine's own apt sources)
#   GEN 6.12  bookworm-backports
#   GEN 7     trixie-backports
# GEN-rt (6.1-rt, 6.12-rt, 7-rt) is the same suite's PREEMPT_RT build.
# Newer generations come from a private apt directory (WORKDIR/apt-GEN) used
# only by apt-get/apt-cache here; the machine's sources are never changed.
# Prints "KREL=<release> KVER=<version>" as the last line of stdout.
set -euo pipefail
GEN=$1; W=$(readlink -f "$2")
FLAVOUR=amd64
case $GEN in *-rt) GEN=${GEN%-rt}; FLAVOUR=rt-amd64 ;; esac
case $GEN in
  6.1) APT=(apt-get); CACHE=(apt-cache) ;;
  6.12|7)
    suite=bookworm-backports; [ "$GEN" = 7 ] && suite=trixie-backports
    A=$W/apt-$GEN; mkdir -p "$A/lists/partial" "$A/cache"; chmod -R 777 "$A"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main" > "$A/sources.list"
    o=(-o Dir::Etc::sourcelist="$A/sources.list" -o Dir::Etc::sourceparts=/nonexistent
       -o Dir::State::Lists="$A/lists" -o Dir::Cache="$A/cache" -o Debug::NoLocking=1)
    APT=(apt-get "${o[@]}"); CACHE=(apt-cache "${o[@]}")
    [ -n "$(ls "$A/lists" 2>/dev/null | grep Packages)" ] || timeout 300 "${APT[@]}" update -q >&2 ;;
  *) echo "fetch-kernel: unknown generation $GEN (6.1, 6.12, 7)" >&2; exit 2 ;;
esac
KPKG=$("${CACHE[@]}" depends linux-image-$FLAVOUR | awk -v g="linux-image-$GEN" '/Depends: linux-image-[0-9]/ && (index($2, g ".")==1 || index($2, g "-")==1 || index($2, g "+")==1) {print $2; exit}')
[ -n "$KPKG" ] || { echo "fetch-kernel: no $GEN $FLAVOUR kernel in apt (run apt-get update)" >&2; exit 1; }
KREL=${KPKG#linux-image-}
KVER=$("${CACHE[@]}" show "$KPKG" | awk '/^Version:/{print $2; exit}')
# Since 7.x the image package is split into linux-binary and linux-modules.
# The flavour's headers name their common tree (-common, or -common-rt).
common=$("${CACHE[@]}" depends "linux-headers-$KREL" | awk '/Depends: linux-headers-.*-common/{print $2; exit}')
pk="$KPKG linux-headers-$KREL $common"
for extra in linux-binary-$KREL linux-modules-$KREL; do
  "${CACHE[@]}" show "$extra" >/dev/null 2>&1 && pk="$pk $extra"; done
kb=$("${CACHE[@]}" depends "linux-headers-$KREL" | awk '/Depends: linux-kbuild-/{print $2; exit}')
pk="$pk $kb"
mkdir -p "$W/debs"; chmod 777 "$W/debs"
missing=""; for p in $pk; do ls "$W/debs/${p}_"*.deb >/dev/null 2>&1 || missing="$missing $p"; done
[ -z "$missing" ] || (cd "$W/debs" && timeout 900 "${APT[@]}" download -q $missing >&2)
rm -rf "$W/kstage" "$W/hstage"; mkdir -p "$W/kstage" "$W/hstage"
for p in $pk; do
  d=$(ls "$W/debs/${p}_"*.deb | head -1)
  case $p in linux-headers-*|linux-kbuild-*) dpkg -x "$d" "$W/hstage" ;; *) dpkg -x "$d" "$W/kstage" ;; esac
done
# merged-/usr packages put modules and vmlinuz under usr/lib/modules
if [ ! -d "$W/kstage/lib/modules" ] && [ -d "$W/kstage/usr/lib/modules" ]; then
  ln -s usr/lib "$W/kstage/lib"; fi
mkdir -p "$W/kstage/boot"
[ -f "$W/kstage/boot/vmlinuz-$KREL" ] || cp "$W/kstage/usr/lib/modules/$KREL/vmlinuz" "$W/kstage/boot/vmlinuz-$KREL"
echo "KREL=$KREL KVER=$KVER"
