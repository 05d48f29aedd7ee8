// aipc: the file behind `lib/libopenvino.so` in the Linux wheel.
//
// intel_npu_acceleration_library/backend/bindings.py does `ctypes.CDLL(<lib>/libopenvino.so)` before loading the
// native library, but the OpenVINO wheel only has `libopenvino.so.<ver>`. This tiny library is linked with
// --no-as-needed against that runtime and has RUNPATH $ORIGIN, so loading it loads the real OpenVINO next to it
// (one copy in the wheel, no 16 MB duplicate). The exported symbol only documents what this file is.
extern "C" {
#if defined(__GNUC__)
__attribute__((visibility("default")))
#endif
const char* aipc_openvino_preload_note() {
    return "aipc: loads libopenvino from the same directory (RUNPATH $ORIGIN)";
}
}
