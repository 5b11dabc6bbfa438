# The Python package (docs/python.md): built when a Python 3 interpreter with its
# development headers and nanobind is found (CNNGRAPH_BUILD_PYTHON=OFF skips it). tools/setup
# installs nanobind and pytest into /opt/cnngraph-python; the dev preset builds for it.
# `pip install .` (scikit-build-core) passes its own interpreter.
set(CNNGRAPH_HAS_PYTHON OFF)
if(CNNGRAPH_BUILD_PYTHON)
  find_package(Python 3.9 COMPONENTS Interpreter Development.Module QUIET)
  if(Python_FOUND)
    execute_process(COMMAND "${Python_EXECUTABLE}" -m nanobind --cmake_dir
      OUTPUT_VARIABLE cnngraph_nanobind_dir OUTPUT_STRIP_TRAILING_WHITESPACE
      RESULT_VARIABLE cnngraph_nanobind_result ERROR_QUIET)
    if(cnngraph_nanobind_result EQUAL 0)
      find_package(nanobind CONFIG QUIET HINTS "${cnngraph_nanobind_dir}")
    endif()
  endif()
  if(Python_FOUND AND nanobind_FOUND)
    set(CNNGRAPH_HAS_PYTHON ON)
    message(STATUS "cnngraph: Python package on (Python ${Python_VERSION} at ${Python_EXECUTABLE}, nanobind ${nanobind_VERSION})")
  elseif(Python_FOUND)
    message(STATUS "cnngraph: Python package off (nanobind not installed for ${Python_EXECUTABLE}: tools/setup installs it into /opt/cnngraph-python; pass -DPython_EXECUTABLE=/opt/cnngraph-python/bin/python3)")
  else()
    message(STATUS "cnngraph: Python package off (no Python 3 interpreter with its development headers, python3-dev)")
  endif()
endif()
if(SKBUILD AND NOT CNNGRAPH_HAS_PYTHON)
  message(FATAL_ERROR "cnngraph: pip builds the Python package, but Python's development headers or nanobind were not found")
endif()
