// cnngraph's exceptions as Python exception classes of the same names under cnngraph. Each
// also derives from the builtin a Python user would catch for it:
//   Error            Exception (the base of all of them)
//   InvalidArgument  Error, ValueError
//   ShapeError       Error, ValueError
//   DataSourceError  Error, OSError (weights that could not be read, as a failed file read)
//   DeviceError      Error, RuntimeError
//   Unsupported      Error, NotImplementedError
//   NumericalError   Error, ArithmeticError
#include <exception>

#include "bindings.hpp"

namespace cnngraph::python {

namespace {

struct ExceptionTypes {
  PyObject* error = nullptr;
  PyObject* invalid_argument = nullptr;
  PyObject* shape_error = nullptr;
  PyObject* data_source_error = nullptr;
  PyObject* device_error = nullptr;
  PyObject* unsupported = nullptr;
  PyObject* numerical_error = nullptr;
};

ExceptionTypes types;

PyObject* new_exception(nb::module_& m, const char* name, nb::handle bases, const char* doc) {
  const std::string qualified = std::string("cnngraph.") + name;
  PyObject* type = PyErr_NewExceptionWithDoc(qualified.c_str(), doc, bases.ptr(), nullptr);
  if (!type) throw nb::python_error();
  // The module keeps the type alive for the life of the process; the translator reads it.
  m.attr(name) = nb::handle(type);
  return type;
}

PyObject* with_base(nb::module_& m, const char* name, PyObject* builtin, const char* doc) {
  return new_exception(m, name, nb::make_tuple(nb::handle(types.error), nb::handle(builtin)), doc);
}

void translate(const std::exception_ptr& exception, void*) {
  try {
    std::rethrow_exception(exception);
  } catch (const InvalidArgument& e) {
    PyErr_SetString(types.invalid_argument, e.what());
  } catch (const ShapeError& e) {
    PyErr_SetString(types.shape_error, e.what());
  } catch (const DataSourceError& e) {
    PyErr_SetString(types.data_source_error, e.what());
  } catch (const DeviceError& e) {
    PyErr_SetString(types.device_error, e.what());
  } catch (const Unsupported& e) {
    PyErr_SetString(types.unsupported, e.what());
  } catch (const NumericalError& e) {
    PyErr_SetString(types.numerical_error, e.what());
  } catch (const Error& e) {
    PyErr_SetString(types.error, e.what());
  }
}

}  // namespace

void bind_errors(nb::module_& m) {
  types.error = new_exception(m, "Error", nb::handle(PyExc_Exception),
                              "The base of every cnngraph exception.");
  types.invalid_argument =
      with_base(m, "InvalidArgument", PyExc_ValueError,
                "A parameter is out of range or inconsistent (a descriptor field, an option, an "
                "array's dtype or layout).");
  types.shape_error = with_base(m, "ShapeError", PyExc_ValueError,
                                "Image sizes or channel counts do not fit together.");
  types.data_source_error =
      with_base(m, "DataSourceError", PyExc_OSError,
                "A data source failed: its weights could not be loaded or are unusable, or a "
                "saved graph or model file is missing or malformed.");
  types.device_error =
      with_base(m, "DeviceError", PyExc_RuntimeError,
                "The device is unavailable, out of memory, or the backend failed.");
  types.unsupported = with_base(m, "Unsupported", PyExc_NotImplementedError,
                                "A valid request that this build or backend does not implement.");
  types.numerical_error = with_base(m, "NumericalError", PyExc_ArithmeticError,
                                    "A computed value is not finite where the library must not "
                                    "go on (a NaN or infinite loss).");
  nb::register_exception_translator(translate);
}

}  // namespace cnngraph::python
