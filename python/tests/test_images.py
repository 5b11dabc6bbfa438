"""Images, shapes, element types, devices and graph options."""

import numpy as np
import pytest

import cnngraph as cg


def test_an_image_shares_an_nhwc_float32_array_and_gives_it_back(rng):
    a = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    image = cg.Image(a)
    assert image.shape == cg.ImageShape(batch=2, height=3, width=4, channels=5)
    assert image.data_type == cg.DataType.f32
    assert image.is_on_host
    assert image.size_in_bytes == a.nbytes
    out = image.numpy()
    assert out.dtype == np.float32 and out.shape == a.shape
    np.testing.assert_array_equal(out, a)
    a[0, 0, 0, 0] = 100.0  # no copy: the image is the array's memory
    assert image.numpy()[0, 0, 0, 0] == 100.0
    copied = cg.Image(a, copy=True)
    a[0, 0, 0, 0] = 0.0
    assert copied.numpy()[0, 0, 0, 0] == 100.0
    np.testing.assert_array_equal(np.asarray(image), out)


def test_an_nchw_array_is_transposed_in_and_out(rng):
    nchw = rng.standard_normal((2, 5, 3, 4)).astype(np.float32)
    image = cg.Image(nchw, nchw=True)
    assert tuple(image.shape) == (2, 3, 4, 5)
    np.testing.assert_array_equal(image.numpy(), nchw.transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(image.numpy(nchw=True), nchw)


def test_float16_and_uint8_arrays_keep_their_element_type(rng):
    h = rng.standard_normal((1, 2, 2, 3)).astype(np.float16)
    image = cg.Image(h)
    assert image.data_type == cg.DataType.f16
    np.testing.assert_array_equal(image.numpy(), h)
    np.testing.assert_array_equal(cg.Image(h, nchw=True).numpy(nchw=True), h)
    u = np.arange(12, dtype=np.uint8).reshape(1, 2, 2, 3)
    assert cg.Image(u).data_type == cg.DataType.u8
    np.testing.assert_array_equal(cg.Image(u).numpy(), u)


def test_data_type_converts_and_bf16_reads_back_as_float32():
    a = np.array([1.0, 0.5, -2.0, 3.0], np.float32).reshape(1, 1, 2, 2)
    half = cg.Image(a, data_type=cg.DataType.f16)
    assert half.data_type == cg.DataType.f16
    assert half.numpy().dtype == np.float16
    bf16 = cg.Image(a, data_type=cg.DataType.bf16)
    assert bf16.data_type == cg.DataType.bf16
    out = bf16.numpy()
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, a)  # exactly representable in bf16
    np.testing.assert_array_equal(half.converted_to(cg.DataType.f32).numpy(), a)


def test_an_image_of_a_shape_is_zero_filled():
    image = cg.Image(cg.ImageShape(1, 2, 3, 4), cg.DataType.f16)
    assert image.data_type == cg.DataType.f16
    assert not image.numpy().any()
    assert repr(image).startswith("Image(n1h2w3c4, f16, ")


def test_an_image_moves_between_cpu_devices_without_copying_on_the_host(rng):
    a = rng.standard_normal((1, 2, 2, 1)).astype(np.float32)
    image = cg.Image(a, device=cg.Device.cpu_reference())
    np.testing.assert_array_equal(image.to(cg.Device.cpu_reference()).numpy(), a)


@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.int8, np.bool_])
def test_a_wrong_dtype_is_an_invalid_argument_naming_it(dtype):
    a = np.zeros((1, 2, 2, 1), dtype)
    with pytest.raises(cg.InvalidArgument, match=np.dtype(dtype).name) as info:
        cg.Image(a)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, cg.Error)


def test_a_non_contiguous_array_is_an_invalid_argument():
    a = np.zeros((1, 4, 4, 2), np.float32)
    with pytest.raises(cg.InvalidArgument, match="not C-contiguous"):
        cg.Image(a[:, ::2, :, :])
    with pytest.raises(cg.InvalidArgument, match="not C-contiguous"):
        cg.Image(np.zeros((1, 2, 4, 4), np.float32).transpose(0, 2, 3, 1))


@pytest.mark.parametrize("shape", [(4,), (2, 3), (2, 3, 4), (1, 2, 3, 4, 5)])
def test_a_wrong_rank_is_a_shape_error(shape):
    with pytest.raises(cg.ShapeError, match="dimensions") as info:
        cg.Image(np.zeros(shape, np.float32))
    assert isinstance(info.value, ValueError)


def test_an_empty_dimension_is_a_shape_error():
    with pytest.raises(cg.ShapeError, match="dimension 2 of 0"):
        cg.Image(np.zeros((1, 2, 0, 3), np.float32))


def test_what_is_not_an_array_is_a_type_error():
    with pytest.raises(TypeError):
        cg.Image([[1.0, 2.0]])
    with pytest.raises(TypeError):
        cg.Image(np.zeros((1, 1, 1, 1), np.float32), True)  # nchw is keyword-only


def test_a_bad_image_shape_is_an_invalid_argument():
    with pytest.raises(cg.InvalidArgument):
        cg.Image(cg.ImageShape(1, -2, 3, 4))


def test_image_shape_reads_like_the_library():
    s = cg.ImageShape(batch=2, height=28, width=28, channels=1)
    assert str(s) == "n2h28w28c1"
    assert repr(s) == "ImageShape(batch=2, height=28, width=28, channels=1)"
    assert tuple(s) == (2, 28, 28, 1)
    assert s.elements() == 2 * 28 * 28 and s.elements_per_image() == 28 * 28
    s.channels = 3
    assert s == cg.ImageShape(2, 28, 28, 3)


def test_devices():
    ref = cg.Device.cpu_reference()
    assert ref.kind == cg.DeviceKind.cpu_reference and ref.index == 0
    assert ref == cg.Device("cpu_reference") and hash(ref) == hash(cg.Device("cpu_reference"))
    assert repr(ref) == "Device.cpu_reference()" and str(ref) == ref.name
    assert cg.Device.cpu().kind == cg.DeviceKind.cpu
    assert cg.Device.cuda_device_count() >= 0
    with pytest.raises(cg.InvalidArgument, match="unknown device 'tpu'"):
        cg.Device("tpu")


def test_memory_statistics_are_for_cuda_devices():
    with pytest.raises(cg.Unsupported, match="CUDA devices only"):
        cg.Device.cpu().memory_statistics()
    if cg.Device.cuda_device_count() == 0:
        pytest.skip("no CUDA GPU here (or this build has no CUDA backend)")
    gpu = cg.Device.cuda()
    gpu.reset_peak_memory()
    before = gpu.memory_statistics()
    image = cg.Image(np.zeros((1, 8, 8, 16), np.float32)).to(gpu)  # 4096 bytes
    held = gpu.memory_statistics()
    assert held.bytes_in_use == before.bytes_in_use + 4096
    assert held.peak_bytes_in_use == held.bytes_in_use <= held.bytes_reserved
    del image
    assert gpu.memory_statistics().bytes_in_use == before.bytes_in_use
    assert "peak_bytes_in_use=" in repr(held)


def test_cuda_without_a_gpu_is_a_device_error():
    if cg.Device.cuda_device_count() > 0:
        pytest.skip("this machine has a GPU: Device.cuda() works")
    with pytest.raises(cg.DeviceError) as info:
        cg.Device.cuda()
    assert isinstance(info.value, RuntimeError)
    with pytest.raises(cg.DeviceError):
        cg.Device("cuda:1")


def test_graph_options_take_keywords_and_read_back():
    o = cg.GraphOptions(precision=cg.Precision.bf16, deterministic=True, max_compiled_sizes=3)
    assert o.precision == cg.Precision.bf16 and o.deterministic and o.max_compiled_sizes == 3
    assert o.flush_denormals and o.cuda_graphs and not o.autotune
    o.verbose = True
    assert o.verbose
    assert repr(o).startswith("GraphOptions(precision=Precision.bf16, deterministic=True")
    with pytest.raises(TypeError):
        cg.GraphOptions(cg.Precision.f16)  # keywords only
    assert [p.name for p in cg.Precision] == ["f32", "tf32_allowed", "f16", "bf16"]
