"""TFLite's integer arithmetic in one place, vectorised in NumPy.

* :mod:`tflite_ref.quant.fixedpoint` -- gemmlowp / ``common.h`` primitives (requantization,
  saturating fixed-point ops, exp / logistic / tanh / 1/(1+x) in fixed point).
* :mod:`tflite_ref.quant.multipliers` -- scales to (multiplier, shift), effective scales,
  activation ranges, softmax / logistic input scaling.
* :mod:`tflite_ref.quant.lut` -- ``LUTPopulate`` / ``LUTLookup`` tables for int8 and int16.

Names follow TFLite's in snake_case so they can be read beside the C++.  The arithmetic default
is the double-rounding build that TFLM and the pip LiteRT wheels ship.
"""

from __future__ import annotations

from tflite_ref.quant.fixedpoint import (
    INT8_MAX,
    INT8_MIN,
    INT16_MAX,
    INT16_MIN,
    INT32_MAX,
    INT32_MIN,
    IntLike,
    c_div,
    c_rem,
    count_leading_sign_bits,
    count_leading_zeros,
    downscale_int32_to_int16_multiplier,
    exp_on_interval_between_negative_one_quarter_and_0_excl,
    exp_on_negative_values,
    get_reciprocal,
    logistic,
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_greater_than_one,
    multiply_by_quantized_multiplier_int64,
    multiply_by_quantized_multiplier_smaller_than_one_exp,
    one_minus_x_over_one_plus_x_for_x_in_0_1,
    one_over_one_plus_x_for_x_in_0_1,
    round_away,
    rounding_divide_by_pot,
    rounding_half_sum,
    saturate_int8,
    saturate_int16,
    saturate_int32,
    saturating_left_shift,
    saturating_rounding_doubling_high_mul,
    saturating_rounding_doubling_high_mul_int16,
    saturating_rounding_multiply_by_pot,
    tanh,
    wrap_int8,
    wrap_int16,
    wrap_int32,
)
from tflite_ref.quant.lut import (
    LUT_INT16_SIZE,
    MathBackend,
    c_erfcf,
    c_exp,
    c_expf,
    c_expm1f,
    c_logf,
    c_tanhf,
    libm_available,
    logistic_f32,
    logistic_lut_int8,
    lut_lookup_int8,
    lut_lookup_int16,
    lut_populate_int8,
    lut_populate_int16,
    softmax_int16_luts,
    tanh_f32,
    tanh_lut_int8,
)
from tflite_ref.quant.multipliers import (
    Emulate,
    QuantizedMultiplier,
    add_effective_scales,
    calculate_activation_range,
    calculate_activation_range_quantized,
    calculate_input_radius,
    conv_effective_scales,
    fc_per_channel_effective_scales,
    fc_per_tensor_effective_scale,
    logistic_tanh_int8_input_scaling,
    mul_effective_scale,
    preprocess_log_softmax_scaling_exp,
    preprocess_softmax_scaling,
    quantize_multiplier,
    quantize_multiplier_greater_than_one,
    quantize_multiplier_smaller_than_one_exp,
    quantize_multipliers,
    requantize_effective_scale,
    softmax_int16_effective_scale,
    sub_effective_scales,
)

__all__ = [
    # fixedpoint
    "INT8_MAX", "INT8_MIN", "INT16_MAX", "INT16_MIN", "INT32_MAX", "INT32_MIN", "IntLike",
    "c_div", "c_rem", "count_leading_sign_bits", "count_leading_zeros",
    "downscale_int32_to_int16_multiplier",
    "exp_on_interval_between_negative_one_quarter_and_0_excl", "exp_on_negative_values",
    "get_reciprocal", "logistic", "multiply_by_quantized_multiplier",
    "multiply_by_quantized_multiplier_greater_than_one", "multiply_by_quantized_multiplier_int64",
    "multiply_by_quantized_multiplier_smaller_than_one_exp",
    "one_minus_x_over_one_plus_x_for_x_in_0_1", "one_over_one_plus_x_for_x_in_0_1", "round_away",
    "rounding_divide_by_pot", "rounding_half_sum", "saturate_int8", "saturate_int16",
    "saturate_int32", "saturating_left_shift", "saturating_rounding_doubling_high_mul",
    "saturating_rounding_doubling_high_mul_int16", "saturating_rounding_multiply_by_pot", "tanh",
    "wrap_int8", "wrap_int16", "wrap_int32",
    # lut
    "LUT_INT16_SIZE", "MathBackend", "c_erfcf", "c_exp", "c_expf", "c_expm1f", "c_logf",
    "c_tanhf", "libm_available",
    "logistic_f32", "logistic_lut_int8", "lut_lookup_int8", "lut_lookup_int16",
    "lut_populate_int8", "lut_populate_int16", "softmax_int16_luts", "tanh_f32", "tanh_lut_int8",
    # multipliers
    "Emulate", "QuantizedMultiplier", "add_effective_scales", "calculate_activation_range",
    "calculate_activation_range_quantized", "calculate_input_radius", "conv_effective_scales",
    "fc_per_channel_effective_scales", "fc_per_tensor_effective_scale",
    "logistic_tanh_int8_input_scaling", "mul_effective_scale",
    "preprocess_log_softmax_scaling_exp", "preprocess_softmax_scaling", "quantize_multiplier",
    "quantize_multiplier_greater_than_one", "quantize_multiplier_smaller_than_one_exp",
    "quantize_multipliers", "requantize_effective_scale", "softmax_int16_effective_scale",
    "sub_effective_scales",
]
