// What the binding files of the extension cnngraph._cnngraph share: one bind_* function per
// area, and the conversions between NumPy arrays and the library's types.
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/filesystem.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/variant.h>
#include <nanobind/stl/vector.h>

#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "cnngraph/cnngraph.hpp"

namespace cnngraph::python {

namespace nb = nanobind;
using namespace nb::literals;

void bind_errors(nb::module_& m);
void bind_images(nb::module_& m);
void bind_nodes(nb::module_& m);
void bind_data_sources(nb::module_& m);
void bind_graph(nb::module_& m);
void bind_io(nb::module_& m);
void bind_training(nb::module_& m);

// Where a node takes an image, Python may pass the image node or the filter that makes it.
using Source = std::variant<std::shared_ptr<ImageNode>, std::shared_ptr<FilterNode>>;
std::shared_ptr<ImageNode> image_of(const Source& source);
std::vector<std::shared_ptr<ImageNode>> images_of(const std::vector<Source>& sources);

// A read-only array (NumPy, or any DLPack tensor, host or GPU) of any element type and
// layout; the functions that take one check them, so that a wrong array is a cnngraph
// exception rather than a silent conversion.
using AnyArray = nb::ndarray<nb::ro>;

// "float64", "int32", ...: an array's element type in messages.
std::string dtype_name(const nb::dlpack::dtype& dtype);
// Throws InvalidArgument naming `what` unless `array` is on the host and C-contiguous.
void require_host_c_contiguous(const AnyArray& array, const std::string& what);
// The elements of a float array (float32 as it is; float16 and float64 converted), in C
// order, for weights and other parameters. Throws InvalidArgument for other element types.
std::vector<float> floats_of(const AnyArray& array, const std::string& what);
// A new NumPy float32 array holding `values` in `shape`.
nb::object numpy_floats(const std::vector<float>& values, std::vector<std::size_t> shape);

}  // namespace cnngraph::python
