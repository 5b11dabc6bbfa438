# The ONNX importer: built when the ONNX project's C++ library (Debian's libonnx-dev) and
# protobuf are found (CNNGRAPH_WITH_ONNX=OFF skips it). It is a library of its own,
# cnngraph_onnx (cnngraph::onnx), so that the core library's link interface holds neither
# protobuf nor ONNX: only a program that imports models needs them.
set(CNNGRAPH_HAS_ONNX OFF)
if(CNNGRAPH_WITH_ONNX)
  # ONNX's exported targets name protobuf::libprotobuf without finding it themselves.
  find_package(Protobuf QUIET)
  if(Protobuf_FOUND)
    find_package(ONNX CONFIG QUIET)
  endif()
  if(Protobuf_FOUND AND ONNX_FOUND AND TARGET onnx AND TARGET onnx_proto)
    set(CNNGRAPH_HAS_ONNX ON)
    message(STATUS "cnngraph: ONNX importer on (ONNX ${ONNX_VERSION})")
  else()
    message(STATUS "cnngraph: ONNX importer off (libonnx-dev or libprotobuf-dev not found)")
  endif()
endif()

function(cnngraph_add_onnx_importer core)
  add_library(cnngraph_onnx
    src/onnx/import.cpp
    src/onnx/model.cpp
    src/onnx/constants.cpp
    src/onnx/operators.cpp
    src/onnx/layout.cpp)
  add_library(cnngraph::onnx ALIAS cnngraph_onnx)
  target_include_directories(cnngraph_onnx PRIVATE ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(cnngraph_onnx PUBLIC ${core}
    PRIVATE onnx onnx_proto protobuf::libprotobuf $<BUILD_INTERFACE:cnngraph_warnings>)
  set_target_properties(cnngraph_onnx PROPERTIES POSITION_INDEPENDENT_CODE ON)
endfunction()
