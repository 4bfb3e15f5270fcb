#!/usr/bin/env bash
# Installs the OpenMMLab stack (mmengine, mmcv with CPU ops, mmdet, mmsegmentation) into an
# existing virtual environment that already has torch, torchvision and setuptools<81:
#
#   bash scripts/install_openmmlab.sh /path/to/venv
#
# Called by scripts/setup.sh. Idempotent: when everything is installed, built against the
# installed torch and working, it only runs the import/op check (a few seconds).
# mmcv 2.1.0 has no wheel for current torch, so it is compiled from its sdist once per torch
# version (~9 minutes on 2 cores) and the wheel kept in
# ${XDG_CACHE_HOME:-~/.cache}/nas-engine/mmcv-2.1.0-torch<version>-<python>/ for re-use.
set -euo pipefail

MMENGINE=0.10.7
MMCV=2.1.0   # the only mmcv that both mmdet 3.3.0 and mmseg 1.2.2 accept (>=2.0.0rc4,<2.2.0)
MMDET=3.3.0
MMSEG=1.2.2

die() { echo "[openmmlab] ERROR: $*" >&2; exit 1; }

[ $# -eq 1 ] || { echo "usage: $0 VENV_DIR" >&2; exit 2; }
venv="$(cd "$1" 2>/dev/null && pwd)" || die "no such directory: $1"
py="$venv/bin/python"
[ -x "$py" ] || die "$venv is not a virtual environment (no bin/python)"
# The pip-installed ninja lands in the venv's bin/; torch's extension builder looks it up on PATH.
export PATH="$venv/bin:$PATH"
pip=("$py" -m pip install --disable-pip-version-check --quiet)

torch_version="$("$py" -c 'import torch; print(torch.__version__)' 2>/dev/null)" \
  || die "torch is not importable in $venv (install torch and torchvision first)"
tv_version="$("$py" -c 'import torchvision; print(torchvision.__version__)' 2>/dev/null)" \
  || die "torchvision is not importable in $venv"
pytag="$("$py" -c 'import sys; print("cp%d%d" % sys.version_info[:2])')"
# The cached mmcv wheel is only valid for the torch it was compiled against (C++ ABI), so the
# folder is named after the torch version ('+' dropped: it gets URL-quoted in pip's metadata).
build_tag="mmcv-$MMCV-torch${torch_version//+/-}-$pytag"
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/nas-engine"
wheel_dir="$cache_root/$build_tag"

# Import/op check, used both as the fast-path probe and as the final verification. It also
# requires that the installed mmcv came from the wheel built for this torch (pip records the
# wheel's path in direct_url.json), so a torch upgrade forces a rebuild even if mmcv._ext
# still happens to load.
check() {
  "$py" - "$build_tag" "$MMENGINE" "$MMCV" "$MMDET" "$MMSEG" <<'EOF'
import sys
import warnings
from importlib import metadata

warnings.simplefilter("ignore")
build_tag, *versions = sys.argv[1:]
try:
    want = dict(zip(("mmengine", "mmcv", "mmdet", "mmsegmentation"), versions))
    for name, version in want.items():
        try:
            got = metadata.version(name)
        except metadata.PackageNotFoundError:
            raise RuntimeError(f"{name} is not installed") from None
        if got != version:
            raise RuntimeError(f"{name} {got} is installed, {version} is wanted")
    origin = metadata.distribution("mmcv").read_text("direct_url.json") or ""
    if f"/{build_tag}/" not in origin:
        raise RuntimeError(f"installed mmcv was not built by this script for this torch ({build_tag})")

    import torch
    import mmcv
    import mmcv.ops
    import mmdet
    import mmdet.models  # noqa: F401  (registers every detector module)
    import mmengine
    import mmseg
    import mmseg.models  # noqa: F401

    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], dtype=torch.float32)
    scores = torch.tensor([0.9, 0.8, 0.7])
    _, keep = mmcv.ops.nms(boxes, scores, iou_threshold=0.5)
    if keep.tolist() != [0, 2]:
        raise RuntimeError(f"mmcv.ops.nms kept {keep.tolist()}, expected [0, 2]")
    feats = torch.arange(32, dtype=torch.float32).view(1, 2, 4, 4)
    rois = torch.tensor([[0, 0, 0, 3, 3]], dtype=torch.float32)
    out = mmcv.ops.RoIAlign((2, 2), spatial_scale=1.0, sampling_ratio=2)(feats, rois)
    if tuple(out.shape) != (1, 2, 2, 2) or not torch.isfinite(out).all():
        raise RuntimeError(f"mmcv.ops.RoIAlign gave a bad result of shape {tuple(out.shape)}")
except Exception as exc:  # one line for the shell to show
    msg = str(exc).strip().splitlines()
    print(f"{type(exc).__name__}: {msg[0] if msg else ''}")
    sys.exit(1)
print(f"torch {torch.__version__}, mmengine {mmengine.__version__}, mmcv {mmcv.__version__}, "
      f"mmdet {mmdet.__version__}, mmseg {mmseg.__version__}")
EOF
}

if status="$(check 2>/dev/null)"; then
  echo "[openmmlab] already installed and working: $status"
  exit 0
fi
echo "[openmmlab] installing into $venv (${status:-probe failed})"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# Keep pip from moving the torch the caller installed (mmcv must be compiled against it) and
# from pulling setuptools>=81, which dropped pkg_resources (mmcv's setup.py and mmengine use it).
cat >"$tmp/constraints.txt" <<EOF
torch==$torch_version
torchvision==$tv_version
setuptools<81
EOF

echo "[openmmlab] installing mmengine $MMENGINE, mmdet $MMDET, mmsegmentation $MMSEG and dependencies"
# mmcv's own runtime requirements are listed here because mmcv itself is installed with
# --no-deps below. ftfy and regex are imported by mmseg's text-model modules; ninja speeds up
# (and parallelises) the C++ build; numpy<2.5 is the newest numpy these releases were checked with.
"${pip[@]}" -c "$tmp/constraints.txt" \
  "setuptools==80.9.0" wheel ninja \
  "mmengine==$MMENGINE" "mmdet==$MMDET" "mmsegmentation==$MMSEG" \
  addict packaging Pillow pyyaml yapf "opencv-python>=3" \
  pycocotools ftfy regex "numpy<2.5" \
  || die "pip could not install the OpenMMLab dependencies"

shopt -s nullglob
wheels=("$wheel_dir"/mmcv-"$MMCV"-*.whl)
if [ ${#wheels[@]} -eq 0 ]; then
  echo "[openmmlab] building mmcv $MMCV for torch $torch_version (CPU ops; ~9 min on 2 cores)"
  # The C++ compiler wrapper: mmcv 2.1.0 hard-codes -std=c++17, but current torch headers need
  # C++20, and CXXFLAGS cannot override it (mmcv's flag comes last). It also drops -g (from
  # Python's CFLAGS): the wheel is ~1.4 MB instead of ~32 MB.
  real_cxx="$(command -v "${CXX:-c++}")" || die "no C++ compiler found (install g++)"
  cat >"$tmp/cxx" <<EOF
#!/bin/sh
for arg in "\$@"; do
  shift
  case "\$arg" in
    -std=c++14|-std=c++17) set -- "\$@" -std=c++20 ;;
    -g) ;;
    *) set -- "\$@" "\$arg" ;;
  esac
done
exec "$real_cxx" "\$@"
EOF
  chmod +x "$tmp/cxx"
  mkdir -p "$cache_root" "$tmp/wheel"
  log="$cache_root/$build_tag.log"
  start=$SECONDS
  # --no-build-isolation: the build must see the installed torch (and setuptools<81).
  # --no-cache-dir: pip's own wheel cache is keyed by the sdist only and would hand back a
  #   wheel compiled against an older torch.
  # CUDA_VISIBLE_DEVICES='' + FORCE_CUDA=0: CPU ops only, even where nvcc or a GPU is visible
  #   (mmcv builds CUDA ops whenever torch.cuda.is_available()).
  if ! env CXX="$tmp/cxx" MMCV_WITH_OPS=1 FORCE_CUDA=0 CUDA_VISIBLE_DEVICES= \
      MAX_JOBS="${MAX_JOBS:-$(nproc 2>/dev/null || echo 2)}" \
      "$py" -m pip wheel --disable-pip-version-check --verbose --no-cache-dir \
      --no-build-isolation --no-deps --no-binary mmcv -w "$tmp/wheel" "mmcv==$MMCV" \
      >"$log" 2>&1; then
    tail -n 25 "$log" >&2
    die "building mmcv $MMCV failed (full log: $log)"
  fi
  wheels=("$tmp/wheel"/mmcv-"$MMCV"-*.whl)
  [ ${#wheels[@]} -eq 1 ] || die "the mmcv build produced no wheel (log: $log)"
  # Move into place only when complete, so an interrupted build never leaves a bad cache.
  mkdir -p "$tmp/stage"
  mv "${wheels[0]}" "$tmp/stage/"
  rm -rf "$wheel_dir"
  mv "$tmp/stage" "$wheel_dir"
  wheels=("$wheel_dir"/mmcv-"$MMCV"-*.whl)
  echo "[openmmlab] built mmcv in $((SECONDS - start)) s: ${wheels[0]}"
else
  echo "[openmmlab] using cached mmcv wheel ${wheels[0]}"
fi

# --force-reinstall: an mmcv 2.1.0 built for another torch may already be installed.
"${pip[@]}" --no-deps --force-reinstall "${wheels[0]}" || die "pip could not install ${wheels[0]}"

echo "[openmmlab] checking imports, mmcv.ops.nms and mmcv.ops.RoIAlign"
if ! status="$(check)"; then
  die "OpenMMLab check failed: ${status:-see the error above} (to force an mmcv rebuild: rm -r $wheel_dir)"
fi
echo "[openmmlab] done: $status"
