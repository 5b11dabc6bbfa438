# The CUDA backend: built when nvcc, cuDNN 9 and cuBLAS are found (CNNGRAPH_WITH_CUDA=OFF
# skips it). Building it needs no GPU; its tests skip themselves where none is present.
set(CNNGRAPH_HAS_CUDA OFF)
if(CNNGRAPH_WITH_CUDA)
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    find_package(CUDAToolkit QUIET)
  endif()
  if(CUDAToolkit_FOUND)
    find_path(CNNGRAPH_CUDNN_INCLUDE_DIR cudnn_graph.h
      HINTS ${CUDAToolkit_INCLUDE_DIRS} PATH_SUFFIXES x86_64-linux-gnu)
    find_library(CNNGRAPH_CUDNN_LIBRARY cudnn HINTS ${CUDAToolkit_LIBRARY_DIR})
  endif()
  if(CUDAToolkit_FOUND AND CNNGRAPH_CUDNN_INCLUDE_DIR AND CNNGRAPH_CUDNN_LIBRARY
     AND TARGET CUDA::cublasLt)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      # Hopper (H100/H200) is what the project measures on; add others as needed.
      set(CMAKE_CUDA_ARCHITECTURES 90)
    endif()
    enable_language(CUDA)
    if(NOT CMAKE_CUDA20_STANDARD_COMPILE_OPTION)
      # CMake before 3.26 knows no C++20 flag for nvcc (our CUDA files follow CXX_STANDARD).
      set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
      set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
    endif()
    set(CNNGRAPH_HAS_CUDA ON)
    message(STATUS "cnngraph: CUDA backend on (cuDNN ${CNNGRAPH_CUDNN_LIBRARY})")
  else()
    message(STATUS "cnngraph: CUDA backend off (nvcc, cuDNN or cuBLASLt not found)")
  endif()
endif()

# The CUDA backend is a library of its own, cnngraph_cuda (cnngraph::cuda), so that the core
# library's link interface holds no CUDA: a program that does not link cnngraph::cuda needs
# neither the CUDA toolkit to build nor libcudart, libcublasLt and libcudnn to start.
#
# The core reaches the backend through one table of functions (src/core/cuda_hooks.hpp)
# that it references weakly. Linking cnngraph::cuda fills that reference: the target's link
# interface carries `--undefined=cnngraph_cuda_backend_hooks`, which makes the linker take
# the object defining the table (and everything it calls) out of the static archive,
# wherever the archive appears on the link line. This is the most robust of the shapes we
# considered: nothing runs before main() (no self-registration, whose objects a static
# archive would drop), the link order of the two archives does not matter, and unlike a
# dlopen()ed backend it needs no second copy of the core inside a shared object and no
# search path at run time. It is a static library whatever BUILD_SHARED_LIBS says: a shared
# one would hold no symbol the program references, and linkers that default to --as-needed
# would drop it.
function(cnngraph_add_cuda_backend core)
  add_library(cnngraph_cuda STATIC
    src/backends/cuda/hooks.cpp
    src/backends/cuda/cuda_backend.cpp
    src/backends/cuda/kernels.cpp
    src/backends/cuda/cuda_memory.cpp
    src/backends/cuda/cudnn/cudnn_graph.cpp
    src/backends/cuda/cudnn/plan_cache.cpp
    src/backends/cuda/convolution/convolution.cpp
    src/backends/cuda/convolution/convolution_support.cpp
    src/backends/cuda/convolution/convolution_nchw.cpp
    src/backends/cuda/convolution/convolution_padded.cpp
    src/backends/cuda/convolution/own_convolution.cpp
    src/backends/cuda/convolution/convolution_transpose.cpp
    src/backends/cuda/convolution/convolution_backward.cpp
    src/backends/cuda/convolution/fully_connected.cpp
    src/backends/cuda/training/training_kernels.cpp
    src/backends/cuda/convolution/convolution_gradient.cpp
    src/backends/cuda/training/training_buffers.cpp
    src/backends/cuda/training/normalization_training.cpp
    src/backends/cuda/kernels/elementwise.cu
    src/backends/cuda/kernels/pooling_softmax.cu
    src/backends/cuda/kernels/normalization.cu
    src/backends/cuda/training/optimizer_step.cu
    src/backends/cuda/kernels/training_ops.cu
    src/backends/cuda/kernels/loss.cu
    src/backends/cuda/kernels/channel_reduction.cu
    src/backends/cuda/kernels/direct_convolution.cu
    src/backends/cuda/kernels/depthwise_convolution.cu
    src/backends/cuda/kernels/binary_convolution.cu
    src/backends/cuda/kernels/binary_convolution_mma.cu)
  add_library(cnngraph::cuda ALIAS cnngraph_cuda)
  # cuDNN has no CMake package of its own; the installed package's config makes the same
  # target from the library it finds on the user's machine (cmake/cnngraphConfig.cmake.in).
  if(NOT TARGET CUDNN::cudnn)
    add_library(CUDNN::cudnn UNKNOWN IMPORTED)
    set_target_properties(CUDNN::cudnn PROPERTIES IMPORTED_LOCATION ${CNNGRAPH_CUDNN_LIBRARY}
      INTERFACE_INCLUDE_DIRECTORIES ${CNNGRAPH_CUDNN_INCLUDE_DIR})
  endif()
  target_include_directories(cnngraph_cuda PRIVATE ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(cnngraph_cuda PUBLIC ${core}
    PRIVATE CUDA::cudart CUDA::cublasLt CUDNN::cudnn nlohmann_json::nlohmann_json
            $<BUILD_INTERFACE:cnngraph_warnings>)
  target_link_options(cnngraph_cuda INTERFACE "LINKER:--undefined=cnngraph_cuda_backend_hooks")
  target_compile_options(cnngraph_cuda PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr>
    $<$<COMPILE_LANGUAGE:CXX>:-fno-math-errno>)
  set_target_properties(cnngraph_cuda PROPERTIES POSITION_INDEPENDENT_CODE ON)
  # The C++ sources only: nvcc compiles the .cu files without it.
  if(CNNGRAPH_PRECOMPILE_HEADERS)
    target_precompile_headers(cnngraph_cuda PRIVATE ${PROJECT_SOURCE_DIR}/src/precompiled.hpp)
  endif()
  # Only for the message of Device::cuda() in a program without cnngraph::cuda.
  target_compile_definitions(${core} PRIVATE CNNGRAPH_CUDA_COMPONENT_BUILT)
endfunction()
