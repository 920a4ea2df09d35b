#include "gguf/ggml_types.hpp"

#include <array>

#include "common/checked_math.hpp"

namespace iris::gguf {
namespace {

using enum TypeStatus;

// From ggml's src/ggml.c type_traits and src/ggml-common.h block structs (ggml snapshot of
// 2026-08; GGML_TYPE_COUNT = 43). Removed ids keep a row so files naming them get a precise
// error instead of "unknown".
constexpr std::array<GGMLType, 43> kTypes{{
    {0, "F32", 1, 4, Current},         {1, "F16", 1, 2, Current},
    {2, "Q4_0", 32, 18, Current},      {3, "Q4_1", 32, 20, Current},
    {4, "Q4_2", 0, 0, Removed},        {5, "Q4_3", 0, 0, Removed},
    {6, "Q5_0", 32, 22, Current},      {7, "Q5_1", 32, 24, Current},
    {8, "Q8_0", 32, 34, Current},      {9, "Q8_1", 32, 36, Internal},
    {10, "Q2_K", 256, 84, Current},    {11, "Q3_K", 256, 110, Current},
    {12, "Q4_K", 256, 144, Current},   {13, "Q5_K", 256, 176, Current},
    {14, "Q6_K", 256, 210, Current},   {15, "Q8_K", 256, 292, Internal},
    {16, "IQ2_XXS", 256, 66, Current}, {17, "IQ2_XS", 256, 74, Current},
    {18, "IQ3_XXS", 256, 98, Current}, {19, "IQ1_S", 256, 50, Current},
    {20, "IQ4_NL", 32, 18, Current},   {21, "IQ3_S", 256, 110, Current},
    {22, "IQ2_S", 256, 82, Current},   {23, "IQ4_XS", 256, 136, Current},
    {24, "I8", 1, 1, Current},         {25, "I16", 1, 2, Current},
    {26, "I32", 1, 4, Current},        {27, "I64", 1, 8, Current},
    {28, "F64", 1, 8, Current},        {29, "IQ1_M", 256, 56, Current},
    {30, "BF16", 1, 2, Current},       {31, "Q4_0_4_4", 0, 0, Removed},
    {32, "Q4_0_4_8", 0, 0, Removed},   {33, "Q4_0_8_8", 0, 0, Removed},
    {34, "TQ1_0", 256, 54, Current},   {35, "TQ2_0", 256, 66, Current},
    {36, "IQ4_NL_4_4", 0, 0, Removed}, {37, "IQ4_NL_4_8", 0, 0, Removed},
    {38, "IQ4_NL_8_8", 0, 0, Removed}, {39, "MXFP4", 32, 17, Current},
    {40, "NVFP4", 64, 36, Current},    {41, "Q1_0", 128, 18, Current},
    {42, "Q2_0", 64, 18, Current},
}};

constexpr bool table_is_indexed_by_id() {
    for (uint32_t i = 0; i < kTypes.size(); ++i) {
        if (kTypes[i].id != i) {
            return false;
        }
    }
    return true;
}
static_assert(table_is_indexed_by_id(), "find_ggml_type indexes the table by id");

}  // namespace

std::span<const GGMLType> ggml_type_table() noexcept {
    return kTypes;
}

const GGMLType* find_ggml_type(uint32_t id) noexcept {
    return id < kTypes.size() ? &kTypes[id] : nullptr;
}

std::optional<uint64_t> tensor_nbytes(const GGMLType& type, uint64_t row_length,
                                      uint64_t n_elements) noexcept {
    if (type.block_size == 0 || row_length % type.block_size != 0) {
        return std::nullopt;
    }
    // Whole rows are whole blocks, so the element count divides evenly too.
    return checked_mul(n_elements / type.block_size, type.type_size);
}

}  // namespace iris::gguf
