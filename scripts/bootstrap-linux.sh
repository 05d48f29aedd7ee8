#!/usr/bin/env bash
# Set up an Ubuntu/Debian machine to build and verify with aipc, idempotently, then run `aipc doctor`.
#
#   scripts/bootstrap-linux.sh [--dry-run] [--pins FILE] [--venv DIR] [--no-doctor]
#
# - apt packages (python3-venv, git, cmake, ninja-build, build-essential, ...), each skipped when installed;
# - the minimum versions come from the pins file (src/aipc/pins.toml, [toolchain]); when the distribution's cmake or
#   ninja is older, the [build_tools] version (the one aipc's build venv runs the builds with) is installed from PyPI
#   into the project venv instead; an old GCC is reported;
# - a venv (default: <repo>/.venv) with aipc installed editable;
# - how to get the Intel NPU driver (intel/linux-npu-driver), the render group and /dev/accel/accel0;
# - then `aipc doctor` (its exit code is this script's exit code).
# --dry-run prints every command it would run and changes nothing (no root, no network).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
PINS="${AIPC_PINS:-$REPO/src/aipc/pins.toml}"
VENV="$REPO/.venv"
DRY_RUN=0
RUN_DOCTOR=1
OS_RELEASE="${AIPC_OS_RELEASE:-/etc/os-release}"

usage() {
    sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

die() {
    # die MESSAGE HINT
    echo "bootstrap-linux: error: $1" >&2
    [ -n "${2:-}" ] && echo "  hint: $2" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run | -n) DRY_RUN=1 ;;
        --pins) [ $# -ge 2 ] || die "--pins needs a file" "--pins src/aipc/pins.toml"; PINS="$2"; shift ;;
        --pins=*) PINS="${1#--pins=}" ;;
        --venv) [ $# -ge 2 ] || die "--venv needs a directory" "--venv .venv"; VENV="$2"; shift ;;
        --venv=*) VENV="${1#--venv=}" ;;
        --no-doctor) RUN_DOCTOR=0 ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown option '$1'" "run with --help" ;;
    esac
    shift
done

[ -f "$PINS" ] || die "pins file $PINS does not exist" "run from an aipc checkout or pass --pins FILE"

# pin SECTION KEY: the string value of KEY in [SECTION] of the pins file (a small reader for `key = "value"`).
pin() {
    local value
    value="$(awk -v section="[$1]" -v key="$2" '
        /^[[:space:]]*\[/ { gsub(/[[:space:]]/, ""); in_section = ($0 == section); next }
        in_section {
            line = $0; sub(/#.*/, "", line)
            split(line, kv, "=")
            k = kv[1]; gsub(/[[:space:]"]/, "", k)
            if (k == key) { v = substr(line, index(line, "=") + 1); gsub(/^[[:space:]]*"|"[[:space:]]*$/, "", v); print v; exit }
        }' "$PINS")"
    [ -n "$value" ] || die "$PINS has no key '$2' in [$1]" "add $2 = \"...\" to [$1] (see src/aipc/pins.toml)"
    printf '%s\n' "$value"
}

CMAKE_MIN="$(pin toolchain cmake_min)"
NINJA_MIN="$(pin toolchain ninja_min)"
CMAKE_PIN="$(pin build_tools cmake)"
NINJA_PIN="$(pin build_tools ninja)"
PYTHON_MIN="$(pin toolchain python_min)"
PYTHON_MAX="$(pin toolchain python_max)"
GCC_MIN="$(pin toolchain gcc_min)"

# version_ge A B: A >= B (dotted versions)
version_ge() {
    [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]
}

say() { printf '%s\n' "$*"; }

# run CMD...: print the command (shell-quoted, ready to copy); run it unless --dry-run
run() {
    local quoted="" arg
    for arg in "$@"; do
        if [[ "$arg" =~ ^[A-Za-z0-9_./:=@+,-]+$ ]]; then
            quoted+="$arg "
        else
            quoted+="'${arg//\'/\'\\\'\'}' "
        fi
    done
    if [ "$DRY_RUN" = 1 ]; then
        say "would run: ${quoted% }"
    else
        say "+ ${quoted% }"
        "$@"
    fi
}

SUDO=()
if [ "$(id -u)" != 0 ]; then
    SUDO=(sudo)
fi

say "aipc bootstrap (Linux), pins: $PINS"
say "pinned minimums: cmake >= $CMAKE_MIN, ninja >= $NINJA_MIN, Python $PYTHON_MIN - $PYTHON_MAX"
[ "$DRY_RUN" = 1 ] && say "dry run: nothing is changed"

# --- 1. distribution -----------------------------------------------------------------------------------------------
distro="unknown"
if [ -r "$OS_RELEASE" ]; then
    # ID, then ID_LIKE only when it is set (Debian itself has none): "ubuntu (like debian)", "debian"
    # shellcheck source=/dev/null
    distro="$(. "$OS_RELEASE"; printf '%s' "${ID:-unknown}"; [ -n "${ID_LIKE:-}" ] && printf ' (like %s)' "$ID_LIKE"; true)"
fi
case " ${distro//[()]/} " in
    *" ubuntu "* | *" debian "*) say "distribution: $distro" ;;
    *) die "this script supports Ubuntu and Debian (found: $distro)" \
        "install python3-venv, git, cmake >= $CMAKE_MIN, ninja >= $NINJA_MIN and a C++ compiler, then run: aipc doctor" ;;
esac

# --- 2. apt packages -------------------------------------------------------------------------------------------------
PACKAGES=(python3 python3-venv python3-pip git cmake ninja-build build-essential pkg-config ca-certificates)
missing=()
for pkg in "${PACKAGES[@]}"; do
    if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        say "ok: $pkg is installed"
    else
        missing+=("$pkg")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    say "to install: ${missing[*]}"
    run "${SUDO[@]}" apt-get update
    run "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

# --- 3. versions against the pins -------------------------------------------------------------------------------
tool_version() {
    # tool_version PROGRAM: the first dotted version PROGRAM --version prints, or nothing
    command -v "$1" >/dev/null 2>&1 || return 0
    "$1" --version 2>/dev/null | grep -oE '[0-9]+(\.[0-9]+)+' | head -n1 || true
}

python_version="$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true)"
if [ -z "$python_version" ]; then
    say "python3: not installed yet (apt above installs it)"
elif version_ge "$python_version" "$PYTHON_MIN" && version_ge "$PYTHON_MAX" "$python_version"; then
    say "ok: python3 $python_version (pins: $PYTHON_MIN - $PYTHON_MAX)"
else
    die "python3 is $python_version, aipc needs Python $PYTHON_MIN - $PYTHON_MAX (pins [toolchain])" \
        "install a Python in that range (e.g. python3.12-venv) and rerun with it first on PATH"
fi

# the compiler: onnxruntime-genai's CMakeLists.txt stops below GCC [toolchain] gcc_min (apt's build-essential on
# Ubuntu 20.04 is GCC 9); not installed here (Ubuntu 20.04 needs a PPA), only said, and aipc doctor checks it
CC_NAME="${CC:-cc}"
cc_version="$(tool_version "$CC_NAME")"
if [ -z "$cc_version" ]; then
    say "C compiler: $CC_NAME not installed yet (build-essential above installs it)"
elif ! "$CC_NAME" --version 2>/dev/null | head -n1 | grep -qiE 'gcc|^cc '; then
    say "ok: $CC_NAME $cc_version is not GCC (onnxruntime-genai sets a minimum for GCC only)"
elif version_ge "$cc_version" "$GCC_MIN"; then
    say "ok: $CC_NAME is GCC $cc_version (pins: >= $GCC_MIN)"
else
    say "warning: $CC_NAME is GCC $cc_version, onnxruntime-genai needs GCC >= $GCC_MIN: sudo apt install g++-$GCC_MIN" \
        "(Ubuntu 20.04: from ppa:ubuntu-toolchain-r/test) and build with CC=gcc-$GCC_MIN CXX=g++-$GCC_MIN"
fi

PIP_TOOLS=()
for spec in "cmake:$CMAKE_MIN:$CMAKE_PIN" "ninja:$NINJA_MIN:$NINJA_PIN"; do
    name="${spec%%:*}"
    rest="${spec#*:}"
    min="${rest%%:*}"
    want="${rest#*:}"
    have="$(tool_version "$name")"
    in_venv="$(tool_version "$VENV/bin/$name")"
    if [ -n "$have" ] && version_ge "$have" "$min"; then
        say "ok: $name $have (pins: >= $min)"
    elif [ -n "$in_venv" ] && version_ge "$in_venv" "$min"; then
        say "ok: $name $in_venv in $VENV (pins: >= $min; $name on PATH: ${have:-missing})"
    else
        say "$name ${have:-missing} is older than the pinned $min: installing $name $want (pins [build_tools]) from PyPI into $VENV"
        PIP_TOOLS+=("$name==$want")
    fi
done

# --- 4. the project venv with aipc ----------------------------------------------------------------------------------
VPY="$VENV/bin/python"
if [ -x "$VPY" ]; then
    say "ok: venv $VENV exists"
else
    run python3 -m venv "$VENV"
fi
if [ -x "$VPY" ] && "$VPY" -c "import aipc" >/dev/null 2>&1; then
    say "ok: aipc is installed in $VENV"
else
    run "$VPY" -m pip install -e "$REPO"
fi
if [ "${#PIP_TOOLS[@]}" -gt 0 ]; then
    run "$VPY" -m pip install "${PIP_TOOLS[@]}"
    say "note: put $VENV/bin first on PATH (source $VENV/bin/activate) so the build finds them"
fi

# --- 5. the NPU driver (not packaged by Debian/Ubuntu) -------------------------------------------------------------
say ""
say "Intel NPU (Core Ultra) on Linux:"
say "  driver: the user-space packages come from https://github.com/intel/linux-npu-driver/releases"
say "    (intel-driver-compiler-npu, intel-fw-npu, intel-level-zero-npu, plus the level-zero loader):"
say "    download the .deb files of the latest release for your Ubuntu version, then: sudo dpkg -i *.deb"
say "  access: sudo usermod -a -G render \"\$USER\" (log out and in); the device is /dev/accel/accel0"
say "  (aipc doctor checks the kernel module, the device and your access)"

# --- 6. aipc doctor -----------------------------------------------------------------------------------------------
say ""
if [ "$RUN_DOCTOR" = 0 ]; then
    say "skipping aipc doctor (--no-doctor)"
    exit 0
fi
if [ "$DRY_RUN" = 1 ]; then
    say "would run: $VPY -m aipc doctor"
    exit 0
fi
if [ -x "$VPY" ]; then
    # $VENV/bin first: doctor must find the cmake/ninja installed there when the distribution's are too old
    say "+ PATH=$VENV/bin:\$PATH $VPY -m aipc doctor"
    PATH="$VENV/bin:$PATH" exec "$VPY" -m aipc doctor
fi
say "+ PYTHONPATH=$REPO/src python3 -m aipc doctor"
PYTHONPATH="$REPO/src${PYTHONPATH:+:$PYTHONPATH}" exec python3 -m aipc doctor
