// The extension module: one binding file per concern, registered here.
#include "bindings.hpp"

PYBIND11_MODULE(_core, m) {
  m.doc() = "wnsense_native native core: sensing operators and Stiefel tools";
  wnsense::bind_sensing(m);
  wnsense::bind_structured(m);
  wnsense::bind_wn(m);
  wnsense::bind_stiefel(m);
  wnsense::bind_bench(m);
  wnsense::bind_spectral(m);
#ifdef _OPENMP
  m.attr("has_openmp") = true;
#else
  m.attr("has_openmp") = false;
#endif
}
