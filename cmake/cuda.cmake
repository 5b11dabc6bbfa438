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

function(cnngraph_add_cuda_backend target)
  target_sources(${target} PRIVATE
    src/backends/cuda/cuda_backend.cpp
    src/backends/cuda/cuda_memory.cpp
    src/backends/cuda/cudnn_graph.cpp
    src/backends/cuda/plan_cache.cpp
    src/backends/cuda/convolution.cpp
    src/backends/cuda/convolution_support.cpp
    src/backends/cuda/convolution_nchw.cpp
    src/backends/cuda/convolution_padded.cpp
    src/backends/cuda/own_convolution.cpp
    src/backends/cuda/convolution_transpose.cpp
    src/backends/cuda/fully_connected.cpp
    src/backends/cuda/training_kernels.cpp
    src/backends/cuda/convolution_gradient.cpp
    src/backends/cuda/device_training.cpp
    src/backends/cuda/normalization_training.cpp
    src/backends/cuda/elementwise.cu
    src/backends/cuda/pooling_softmax.cu
    src/backends/cuda/normalization.cu
    src/backends/cuda/optimizer_step.cu
    src/backends/cuda/training_ops.cu
    src/backends/cuda/loss.cu
    src/backends/cuda/channel_reduction.cu
    src/backends/cuda/direct_convolution.cu
    src/backends/cuda/depthwise_convolution.cu
    src/backends/cuda/binary_convolution.cu)
  target_include_directories(${target} PRIVATE ${CNNGRAPH_CUDNN_INCLUDE_DIR})
  target_link_libraries(${target} PRIVATE CUDA::cudart CUDA::cublasLt ${CNNGRAPH_CUDNN_LIBRARY})
  target_compile_definitions(${target} PRIVATE CNNGRAPH_HAS_CUDA)
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr>)
endfunction()
