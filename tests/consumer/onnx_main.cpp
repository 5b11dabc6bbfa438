// The importer as an installed user links it (cnngraph::onnx): a missing model is refused
// with cnngraph's own error.
#include <cnngraph/cnngraph.hpp>
#include <cnngraph/onnx.hpp>
#include <iostream>

int main() {
  try {
    cnngraph::onnx::import("no_such_model.onnx");
  } catch (const cnngraph::DataSourceError& e) {
    std::cout << "consumer: onnx::import: " << e.what() << "\n";
    return 0;
  }
  return 1;
}
