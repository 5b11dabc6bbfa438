// The error hierarchy of cnngraph: every failure is an exception derived from Error whose
// message names the node, the member and the offending values. (MPS reports errors through
// nil results and NSError; there is no direct counterpart.)
#pragma once

#include <stdexcept>
#include <string>

namespace cnngraph {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A parameter is out of range or inconsistent (a descriptor field, an option, a handle).
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

// Image sizes or channel counts do not fit together.
class ShapeError : public Error {
 public:
  using Error::Error;
};

// A data source failed: load() returned false or threw, or its weights are unusable.
class DataSourceError : public Error {
 public:
  using Error::Error;
};

// The device is unavailable, out of memory, or the backend failed.
class DeviceError : public Error {
 public:
  using Error::Error;
};

// A valid request that this build or backend does not implement.
class Unsupported : public Error {
 public:
  using Error::Error;
};

// A computed value is not finite where the library must not go on (a NaN or infinite loss:
// the batch's weight updates are skipped and the run throws this).
class NumericalError : public Error {
 public:
  using Error::Error;
};

}  // namespace cnngraph
