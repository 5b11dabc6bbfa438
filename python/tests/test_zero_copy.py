"""Images in and out without copies: NumPy arrays, DLPack, and (on the GPU machine) PyTorch
CPU and CUDA tensors. Zero-copy is proven by pointer identity."""

import gc
import weakref

import numpy as np
import pytest

import cnngraph as cg


def address(array):
    return array.__array_interface__["data"][0]


def conv_graph(device=None, channels=3):
    x = cg.ImageNode("x")
    d = cg.ConvolutionDescriptor(3, 3, channels, 4)
    rng = np.random.default_rng(1)
    w = rng.standard_normal((4, 3, 3, channels), dtype=np.float32)
    conv = cg.ConvolutionNode(x, cg.ArrayDataSource("w", d, w, bias=np.zeros(4)))
    return cg.Graph(device or cg.Device.cpu(), conv)


def test_a_contiguous_nhwc_array_is_the_images_memory():
    array = np.random.default_rng(0).random((2, 5, 6, 3), dtype=np.float32)
    image = cg.Image(array)
    assert image.data_ptr == address(array)
    assert image.shape == cg.ImageShape(2, 5, 6, 3)
    copied = cg.Image(array, copy=True)
    assert copied.data_ptr != address(array)
    graph = conv_graph()
    np.testing.assert_array_equal(graph.run(image)[0].numpy(), graph.run(copied)[0].numpy())


def test_the_image_keeps_the_array_alive():
    class Owned(np.ndarray):
        pass

    array = np.arange(24, dtype=np.float32).reshape(1, 2, 4, 3).view(Owned)
    watch = weakref.ref(array)
    image = cg.Image(array)
    del array
    gc.collect()
    assert watch() is not None
    np.testing.assert_array_equal(image.numpy().ravel(), np.arange(24, dtype=np.float32))
    del image
    gc.collect()
    assert watch() is None


def test_float16_uint8_and_read_only_arrays_are_wrapped_too():
    for dtype in (np.float16, np.uint8):
        array = np.ones((1, 2, 2, 4), dtype=dtype)
        image = cg.Image(array)
        assert image.data_ptr == address(array)
    frozen = np.zeros((1, 3, 3, 2), dtype=np.float32)
    frozen.setflags(write=False)
    assert cg.Image(frozen).data_ptr == address(frozen)


def test_a_channels_last_nchw_view_is_wrapped_and_a_plain_nchw_array_is_transposed():
    nhwc = np.random.default_rng(2).random((2, 4, 5, 3), dtype=np.float32)
    channels_last = nhwc.transpose(0, 3, 1, 2)  # shape NCHW, memory NHWC
    image = cg.Image(channels_last, nchw=True)
    assert image.data_ptr == address(nhwc)
    nchw = np.ascontiguousarray(channels_last)
    transposed = cg.Image(nchw, nchw=True)
    assert transposed.data_ptr != address(nchw)
    np.testing.assert_array_equal(transposed.numpy(), nhwc)
    with pytest.raises(ValueError, match="transposed to NHWC"):
        cg.Image(nchw, nchw=True, copy=False)


def test_a_conversion_or_misalignment_copies_and_copy_false_refuses_it():
    array = np.ones((1, 2, 2, 2), dtype=np.float32)
    converted = cg.Image(array, data_type=cg.DataType.f16)
    assert converted.data_type == cg.DataType.f16 and converted.data_ptr != address(array)
    with pytest.raises(ValueError, match="converted to f16"):
        cg.Image(array, data_type=cg.DataType.f16, copy=False)
    raw = np.zeros(8 * 4 + 1, dtype=np.uint8)
    misaligned = np.frombuffer(raw.data, dtype=np.float32, count=8, offset=1).reshape(1, 2, 2, 2)
    assert cg.Image(misaligned).data_ptr != address(misaligned)
    with pytest.raises(ValueError, match="not aligned"):
        cg.Image(misaligned, copy=False)


def test_bad_arrays_raise_clear_exceptions():
    array = np.zeros((2, 4, 4, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="C-contiguous"):
        cg.Image(array[:, ::2])
    with pytest.raises(ValueError, match="float64"):
        cg.Image(array.astype(np.float64))
    with pytest.raises(ValueError, match="int32"):
        cg.from_dlpack(array.astype(np.int32))
    with pytest.raises(ValueError, match="4-dimensional"):
        cg.Image(array[0])


def test_numpy_gives_a_view_of_a_result_that_keeps_it_alive():
    graph = conv_graph()
    result = graph.run(cg.Image(np.ones((1, 5, 5, 3), dtype=np.float32)))[0]
    view = result.numpy()
    assert address(view) == result.data_ptr
    expected = view.copy()
    nchw = result.numpy(nchw=True)
    assert nchw.shape == (1, 4, 5, 5) and np.shares_memory(nchw, view)
    np.testing.assert_array_equal(nchw, expected.transpose(0, 3, 1, 2))
    own = result.numpy(copy=True)
    assert address(own) != result.data_ptr
    assert np.asarray(result).__array_interface__["data"][0] == result.data_ptr
    del result
    gc.collect()
    np.testing.assert_array_equal(view, expected)


def test_dlpack_in_both_directions_shares_memory():
    array = np.random.default_rng(3).random((1, 3, 3, 2), dtype=np.float32)
    image = cg.from_dlpack(array)
    assert image.data_ptr == address(array)
    assert image.__dlpack_device__() == (1, 0)
    back = np.from_dlpack(image)
    assert address(back) == address(array) and back.shape == (1, 3, 3, 2)


def torch_or_skip():
    try:
        import torch
    except ImportError:
        pytest.skip("PyTorch is not installed here (it is on the GPU machine)")
    return torch


def test_torch_cpu_tensors_go_in_and_come_out_without_copies():
    torch = torch_or_skip()
    tensor = torch.rand(2, 3, 6, 6).contiguous(memory_format=torch.channels_last)
    image = cg.Image(tensor, nchw=True)
    assert image.data_ptr == tensor.data_ptr()
    result = conv_graph().run(image)[0]
    out = torch.from_dlpack(result)
    assert out.data_ptr() == result.data_ptr
    assert tuple(out.shape) == (2, 6, 6, 4)


def cuda_or_skip():
    torch = torch_or_skip()
    if not torch.cuda.is_available() or cg.Device.cuda_device_count() == 0:
        pytest.skip("no CUDA GPU here (or this build has no CUDA backend)")
    return torch


def test_a_cuda_tensor_goes_into_a_cuda_graph_and_the_result_comes_back_as_a_tensor():
    torch = cuda_or_skip()
    host = np.random.default_rng(4).random((2, 7, 7, 3), dtype=np.float32)
    tensor = torch.from_numpy(host).cuda() * 1.0  # made by a CUDA kernel of torch's stream
    image = cg.Image(tensor)
    assert image.device == cg.Device.cuda(0)
    assert image.data_ptr == tensor.data_ptr()
    result = conv_graph(cg.Device.cuda(0)).run(image)[0]
    out = torch.from_dlpack(result)
    assert out.is_cuda and out.data_ptr() == result.data_ptr
    expected = conv_graph(cg.Device.cpu_reference()).run(cg.Image(host))[0].numpy()
    np.testing.assert_allclose(out.cpu().numpy(), expected, rtol=1e-4, atol=1e-4)


def test_cuda_channels_last_half_tensors_are_wrapped_and_other_layouts_copied():
    torch = cuda_or_skip()
    tensor = torch.rand(1, 3, 5, 5, device="cuda", dtype=torch.float16)
    channels_last = tensor.contiguous(memory_format=torch.channels_last)
    image = cg.Image(channels_last, nchw=True)
    assert image.data_type == cg.DataType.f16 and image.data_ptr == channels_last.data_ptr()
    copied = cg.Image(tensor, nchw=True)  # contiguous NCHW: transposed through a copy
    assert copied.data_ptr != tensor.data_ptr()
    np.testing.assert_array_equal(
        copied.numpy(), channels_last.permute(0, 2, 3, 1).cpu().numpy())
    with pytest.raises(ValueError, match="transposed"):
        cg.from_dlpack(tensor, nchw=True)
