#include "gguf/gguf_parser.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <numeric>
#include <unordered_map>
#include <unordered_set>

#include "common/checked_math.hpp"
#include "gguf/ggml_types.hpp"

namespace iris::gguf {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // the bytes "GGUF" read little-endian
constexpr size_t kMaxWarnings = 64;

uint16_t byteswap(uint16_t v) {
    return static_cast<uint16_t>((v >> 8) | (v << 8));
}
uint8_t byteswap(uint8_t v) {
    return v;
}
uint32_t byteswap(uint32_t v) {
    return ((v & 0x000000FFu) << 24) | ((v & 0x0000FF00u) << 8) | ((v & 0x00FF0000u) >> 8)
           | ((v & 0xFF000000u) >> 24);
}
uint64_t byteswap(uint64_t v) {
    return (static_cast<uint64_t>(byteswap(static_cast<uint32_t>(v))) << 32)
           | byteswap(static_cast<uint32_t>(v >> 32));
}

template <class T>
T load(const uint8_t* p, bool swap) {
    T value;
    std::memcpy(&value, p, sizeof(T));
    if (swap) {
        value = byteswap(value);
    }
    return value;
}

/// A file's text in an error message: printable ASCII kept, everything else escaped, long
/// names shortened, so a hostile key cannot flood or garble the message.
std::string printable(std::string_view bytes) {
    constexpr size_t kMaxShown = 80;
    std::string out;
    for (size_t i = 0; i < bytes.size() && i < kMaxShown; ++i) {
        const auto c = static_cast<unsigned char>(bytes[i]);
        if (c >= 0x20 && c < 0x7F) {
            out += static_cast<char>(c);
        } else {
            static constexpr char kHex[] = "0123456789abcdef";
            out += "\\x";
            out += kHex[c >> 4];
            out += kHex[c & 15];
        }
    }
    if (bytes.size() > kMaxShown) {
        out += "...";
    }
    return out;
}

std::string format_message(const std::string& source_name, uint64_t offset,
                           const std::string& what) {
    return source_name + ": byte " + std::to_string(offset) + ": " + what;
}

/// Names what a non-GGUF file most likely is, from its first bytes, so the error can say
/// "this is a zip archive" instead of only "bad magic".
std::string describe_foreign_format(const uint8_t* data, uint64_t size) {
    const auto starts_with = [&](std::string_view prefix) {
        return size >= prefix.size() && std::memcmp(data, prefix.data(), prefix.size()) == 0;
    };
    if (starts_with("PK\x03\x04") || starts_with("PK\x05\x06")) {
        return "this is a zip archive (a PyTorch checkpoint or a zipped download?), not GGUF";
    }
    if (starts_with("\x1f\x8b")) {
        return "this is a gzip-compressed file, not GGUF: decompress it first";
    }
    if (starts_with("version https://git-lfs")) {
        return "this is a Git LFS pointer file, not the model: fetch the real file "
               "(git lfs pull, or download the resolve URL)";
    }
    if (starts_with("<!DOCTYPE") || starts_with("<!doctype") || starts_with("<html")
        || starts_with("<HTML")) {
        return "this is an HTML page, not GGUF: the download probably returned an error page";
    }
    if (starts_with("{") || starts_with("[")) {
        return "this looks like a JSON document, not GGUF";
    }
    if (size >= 9 && data[8] == '{') {
        const uint64_t json_size = load<uint64_t>(data, false);
        if (json_size > 1 && json_size <= size) {
            return "this looks like a safetensors file, not GGUF";
        }
    }
    if (starts_with("lmgg") || starts_with("fmgg") || starts_with("tjgg")) {
        return "this is a legacy GGML/GGMF/GGJT model; convert it to GGUF with llama.cpp";
    }
    return "the file does not start with the GGUF magic bytes \"GGUF\"";
}

/// The walk over one header. Owns no memory beyond the Header it fills.
class Walker {
public:
    Walker(const uint8_t* data, uint64_t available, std::optional<uint64_t> file_size,
           const std::string& name, const Limits& limits, Header& header)
        : data_(data)
        , available_(file_size ? std::min(available, *file_size) : available)
        , file_size_(file_size)
        , name_(name)
        , limits_(limits)
        , header_(header) {}

    void run() {
        read_preamble();
        read_key_values();
        header_.end_of_kvs = pos_;
        read_tensor_infos();
        header_.end_of_tensor_infos = pos_;
        place_data_section();
        check_tensor_data();
    }

private:
    [[noreturn]] void fail(uint64_t offset, const std::string& what) const {
        throw GGUFError(ErrorKind::Malformed, name_, offset, what);
    }

    void warn(uint64_t offset, std::string message) {
        if (header_.warnings.size() < kMaxWarnings) {
            header_.warnings.push_back({offset, std::move(message)});
        } else {
            ++header_.warnings_dropped;
        }
    }

    /// Makes sure `n` bytes starting at the cursor are readable.
    void need(uint64_t n, const std::string& what) const {
        if (n <= available_ - pos_) {
            return;
        }
        const auto end = checked_add(pos_, n);
        if (!end) {
            fail(pos_, what + " claims " + std::to_string(n) + " bytes, more than any file holds");
        }
        if (file_size_ && *end > *file_size_) {
            throw GGUFError(ErrorKind::Truncated, name_, pos_,
                            what + " needs " + std::to_string(n) + " bytes but only "
                                + std::to_string(*file_size_ - pos_)
                                + " remain in the file: it is truncated or corrupt",
                            *end);
        }
        throw GGUFError(ErrorKind::NeedMoreData, name_, pos_,
                        what + " runs past the " + std::to_string(available_)
                            + " bytes available; retry with at least " + std::to_string(*end)
                            + " bytes",
                        *end);
    }

    /// Like need(), for a lower bound on what a count of records must occupy: checked
    /// against the whole file before anything is sized from the count.
    void need_at_least(uint64_t count, uint64_t bytes_each, const std::string& what) const {
        const auto total = checked_mul(count, bytes_each);
        if (!total) {
            fail(pos_, what + ": " + std::to_string(count) + " entries cannot fit in any file");
        }
        need(*total, what + " (" + std::to_string(count) + " entries)");
    }

    template <class T>
    T read(const char* what) {
        need(sizeof(T), what);
        const T value = load<T>(data_ + pos_, header_.big_endian);
        pos_ += sizeof(T);
        return value;
    }

    /// String lengths, counts and dims: u64, or u32 in GGUF v1.
    uint64_t read_length(const char* what) {
        if (header_.length_size == 4) {
            return read<uint32_t>(what);
        }
        return read<uint64_t>(what);
    }

    /// Reads a GGUF string, returning its absolute offset and length.
    std::pair<uint64_t, uint64_t> read_string(uint64_t max_bytes, const std::string& what) {
        const uint64_t at = pos_;
        const uint64_t size = read_length(what.c_str());
        if (size > max_bytes) {
            fail(at, what + " is " + std::to_string(size) + " bytes long; the limit is "
                         + std::to_string(max_bytes));
        }
        need(size, what);
        const uint64_t start = pos_;
        pos_ += size;
        return {start, size};
    }

    void read_preamble() {
        if (file_size_ && *file_size_ == 0) {
            throw GGUFError(ErrorKind::Truncated, name_, 0,
                            "the file is empty (0 bytes): an interrupted download?", 4);
        }
        need(4, "the magic number");
        if (load<uint32_t>(data_, false) != kMagic) {
            fail(0, describe_foreign_format(data_, available_));
        }
        pos_ = 4;
        need(4, "the version");
        uint32_t version = load<uint32_t>(data_ + pos_, false);
        // There is no endianness flag: a big-endian file's version reads as 0x0N000000.
        if (version != 0 && (version & 0xFFFFu) == 0) {
            header_.big_endian = true;
            version = byteswap(version);
        }
        if (version < 1 || version > 3) {
            fail(pos_, "unsupported GGUF version " + std::to_string(version)
                           + " (this reader knows versions 1 to 3)");
        }
        pos_ += 4;
        header_.version = version;
        header_.length_size = version == 1 ? 4 : 8;
        if (version == 1) {
            warn(4, "GGUF version 1 (2023): llama.cpp no longer loads v1 files");
        }

        const uint64_t tensor_count_at = pos_;
        header_.n_tensors = read_length("the tensor count");
        const uint64_t kv_count_at = pos_;
        header_.n_kv = read_length("the key/value count");
        if (header_.n_tensors > limits_.max_tensor_count) {
            fail(tensor_count_at, "tensor count " + std::to_string(header_.n_tensors)
                                      + " exceeds the limit of "
                                      + std::to_string(limits_.max_tensor_count));
        }
        if (header_.n_kv > limits_.max_kv_count) {
            fail(kv_count_at, "key/value count " + std::to_string(header_.n_kv)
                                  + " exceeds the limit of "
                                  + std::to_string(limits_.max_kv_count));
        }
        // Smallest records: a 1-byte key with a u8 value; a 1-byte name with no dims.
        const uint64_t min_kv = header_.length_size + 1 + 4 + 1;
        const uint64_t min_tensor = header_.length_size + 1 + 4 + 4 + 8;
        // Both counts are capped at 2^20 above, so this cannot overflow.
        const uint64_t least = header_.n_kv * min_kv + header_.n_tensors * min_tensor;
        need(least, std::to_string(header_.n_kv) + " key/value records and "
                        + std::to_string(header_.n_tensors) + " tensor infos");
    }

    /// How many records to reserve room for: the claimed count, but never more than the
    /// bytes at hand could hold, so a tiny buffer cannot make us allocate for 2^20 records.
    [[nodiscard]] size_t reservable(uint64_t count, uint64_t min_record_bytes) const {
        return static_cast<size_t>(std::min(count, (available_ - pos_) / min_record_bytes));
    }

    void read_key_values() {
        const size_t expected = reservable(header_.n_kv, header_.length_size + 6);
        header_.kvs.reserve(expected);
        std::unordered_map<std::string_view, uint64_t> seen;
        seen.reserve(expected);
        for (uint64_t i = 0; i < header_.n_kv; ++i) {
            const uint64_t record_at = pos_;
            const auto [key_offset, key_size]
                = read_string(limits_.max_key_bytes, "key of record " + std::to_string(i));
            const std::string_view key(reinterpret_cast<const char*>(data_ + key_offset),
                                       static_cast<size_t>(key_size));
            if (key.empty()) {
                fail(record_at, "key/value record " + std::to_string(i) + " has an empty key");
            }
            if (const auto [it, fresh] = seen.emplace(key, record_at); !fresh) {
                fail(record_at, "duplicate key '" + printable(key) + "' (first at byte "
                                    + std::to_string(it->second) + ")");
            }
            if (std::any_of(key.begin(), key.end(),
                            [](char c) { return static_cast<unsigned char>(c) >= 0x80; })) {
                warn(record_at, "key '" + printable(key) + "' is not ASCII, as the spec requires");
            }
            const std::string label = "key '" + printable(key) + "'";
            const uint64_t type_at = pos_;
            const uint32_t raw_type = read<uint32_t>("a value type");
            if (raw_type >= kValueTypeCount) {
                fail(type_at, label + " has unknown value type " + std::to_string(raw_type));
            }
            KeyValue kv;
            kv.key_offset = key_offset;
            kv.key_size = static_cast<uint32_t>(key_size);
            kv.value = read_value(static_cast<ValueType>(raw_type), 0, label);
            if (key == "general.alignment") {
                apply_alignment(kv.value, type_at, label);
            }
            header_.kvs.push_back(kv);
        }
    }

    void apply_alignment(const Value& value, uint64_t at, const std::string& label) {
        if (value.type != ValueType::Uint32) {
            fail(at, label + " must be a UINT32, found " + value_type_name(value.type));
        }
        const uint64_t alignment = load<uint32_t>(data_ + value.offset, header_.big_endian);
        if (!is_power_of_two(alignment) || alignment > limits_.max_alignment) {
            fail(at, label + " is " + std::to_string(alignment)
                         + "; it must be a power of two no larger than "
                         + std::to_string(limits_.max_alignment));
        }
        header_.alignment = alignment;
    }

    Value read_value(ValueType type, uint32_t depth, const std::string& label) {
        Value value;
        value.type = type;
        if (type == ValueType::String) {
            const auto [offset, size] = read_string(limits_.max_string_bytes, label);
            value.offset = offset;
            value.count = size;
            value.size_bytes = size;
            return value;
        }
        if (type == ValueType::Array) {
            return read_array(depth, label);
        }
        const uint64_t size = fixed_value_size(type);
        need(size, label);
        value.offset = pos_;
        value.count = 1;
        value.size_bytes = size;
        if (type == ValueType::Bool && data_[pos_] > 1) {
            warn(pos_, label + " is a bool stored as " + std::to_string(data_[pos_])
                           + "; the spec allows only 0 and 1");
        }
        pos_ += size;
        return value;
    }

    Value read_array(uint32_t depth, const std::string& label) {
        const uint64_t array_at = pos_;
        const uint32_t raw_type = read<uint32_t>("an array element type");
        if (raw_type >= kValueTypeCount) {
            fail(array_at, label + " is an array of unknown type " + std::to_string(raw_type));
        }
        const auto element_type = static_cast<ValueType>(raw_type);
        const uint64_t count = read_length("an array length");
        if (count > limits_.max_array_elements) {
            fail(array_at, label + " is an array of " + std::to_string(count)
                               + " elements; the limit is "
                               + std::to_string(limits_.max_array_elements));
        }
        Value value;
        value.type = ValueType::Array;
        value.element_type = element_type;
        value.count = count;
        value.offset = pos_;
        switch (element_type) {
        case ValueType::String:
            read_string_array(value, label);
            break;
        case ValueType::Array:
            read_nested_arrays(value, depth, label);
            break;
        default:
            read_fixed_array(value, label);
            break;
        }
        value.size_bytes = pos_ - value.offset;
        return value;
    }

    void read_fixed_array(Value& value, const std::string& label) {
        const uint64_t element_size = fixed_value_size(value.element_type);
        need_at_least(value.count, element_size, label);
        if (value.element_type == ValueType::Bool) {
            const uint8_t* begin = data_ + pos_;
            const uint8_t* end = begin + value.count;
            const auto* bad = std::find_if(begin, end, [](uint8_t b) { return b > 1; });
            if (bad != end) {
                warn(pos_ + static_cast<uint64_t>(bad - begin),
                     label + " holds a bool stored as " + std::to_string(*bad)
                         + "; the spec allows only 0 and 1");
            }
        }
        pos_ += value.count * element_size;  // need_at_least checked the product
    }

    void read_string_array(Value& value, const std::string& label) {
        // Each element has at least its length prefix; check that before indexing.
        need_at_least(value.count, header_.length_size, label);
        StringArrayIndex index;
        index.count = value.count;
        index.checkpoints.reserve(static_cast<size_t>(value.count / kStringIndexStride + 1));
        // The hot loop of the whole parse (a vocabulary is ~10^5 strings): work on locals so
        // the compiler need not reload members the checkpoint push might alias.
        const uint64_t max_bytes = limits_.max_string_bytes;
        const uint64_t length_size = header_.length_size;
        const bool swap = header_.big_endian;
        const uint8_t* const data = data_;
        const uint64_t available = available_;
        uint64_t pos = pos_;
        for (uint64_t i = 0; i < value.count; ++i) {
            if (i % kStringIndexStride == 0) {
                index.checkpoints.push_back(pos);
            }
            if (available - pos < length_size) {
                pos_ = pos;
                need(length_size, "a string length");  // throws: the bytes are not there
            }
            const uint64_t size = length_size == 8 ? load<uint64_t>(data + pos, swap)
                                                   : load<uint32_t>(data + pos, swap);
            if (size > max_bytes || size > available - pos - length_size) {
                pos_ = pos;
                if (size > max_bytes) {
                    fail(pos, label + " element " + std::to_string(i) + " is "
                                  + std::to_string(size) + " bytes long; the limit is "
                                  + std::to_string(max_bytes));
                }
                pos_ = pos + length_size;
                need(size, label + " element " + std::to_string(i));  // throws
            }
            pos += length_size + size;
        }
        pos_ = pos;
        index.end = pos_;
        value.aux = static_cast<uint32_t>(header_.string_arrays.size());
        header_.string_arrays.push_back(std::move(index));
    }

    void read_nested_arrays(Value& value, uint32_t depth, const std::string& label) {
        if (depth + 1 > limits_.max_array_depth) {
            fail(value.offset, label + " nests arrays deeper than "
                                   + std::to_string(limits_.max_array_depth) + " levels");
        }
        // Each child array has at least its element type and length.
        need_at_least(value.count, 4 + header_.length_size, label);
        if (depth == 0) {
            warn(value.offset, label + " is an array of arrays: the spec allows it, but "
                                       "llama.cpp refuses to load such files");
        }
        const size_t first = header_.nested_values.size();
        header_.nested_values.resize(first + static_cast<size_t>(value.count));
        for (uint64_t i = 0; i < value.count; ++i) {
            // The vector may grow while the child is read, so assign by index afterwards.
            const Value child = read_array(depth + 1, label + "[" + std::to_string(i) + "]");
            header_.nested_values[first + static_cast<size_t>(i)] = child;
        }
        value.aux = static_cast<uint32_t>(first);
    }

    void read_tensor_infos() {
        const size_t expected = reservable(header_.n_tensors, header_.length_size + 17);
        header_.tensors.reserve(expected);
        std::unordered_map<std::string_view, uint64_t> seen;
        seen.reserve(expected);
        for (uint64_t i = 0; i < header_.n_tensors; ++i) {
            const uint64_t record_at = pos_;
            TensorInfo tensor;
            tensor.record_offset = record_at;
            const auto [name_offset, name_size]
                = read_string(limits_.max_tensor_name_bytes, "name of tensor " + std::to_string(i));
            tensor.name_offset = name_offset;
            tensor.name_size = static_cast<uint32_t>(name_size);
            const std::string_view name(reinterpret_cast<const char*>(data_ + name_offset),
                                        static_cast<size_t>(name_size));
            const std::string label = "tensor '" + printable(name) + "'";
            if (const auto [it, fresh] = seen.emplace(name, record_at); !fresh) {
                fail(record_at, "duplicate tensor name '" + printable(name) + "' (first at byte "
                                    + std::to_string(it->second) + ")");
            }
            if (name_size == 0) {
                warn(record_at, "tensor " + std::to_string(i) + " has an empty name");
            }
            if (name_size >= 64) {
                warn(record_at, label + " has a 64-byte name; llama.cpp accepts at most 63");
            }
            const uint64_t dims_at = pos_;
            tensor.n_dims = read<uint32_t>("a dimension count");
            if (tensor.n_dims > kMaxDims) {
                fail(dims_at, label + " has " + std::to_string(tensor.n_dims)
                                  + " dimensions; GGUF allows at most 4");
            }
            uint64_t n_elements = 1;
            bool overflow = false;
            for (uint32_t d = 0; d < tensor.n_dims; ++d) {
                const uint64_t dim_at = pos_;
                const uint64_t ne = read_length("a dimension");
                if (ne > static_cast<uint64_t>(INT64_MAX)) {
                    fail(dim_at, label + " dimension " + std::to_string(d) + " is "
                                     + std::to_string(static_cast<int64_t>(ne))
                                     + " (negative as a signed 64-bit count)");
                }
                tensor.ne[d] = ne;
                const auto product = checked_mul(n_elements, ne);
                overflow = overflow || !product;
                n_elements = product.value_or(0);
            }
            if (overflow || n_elements > static_cast<uint64_t>(INT64_MAX)) {
                fail(dims_at, label + " has more elements than a 64-bit count can hold");
            }
            tensor.n_elements = n_elements;
            const uint64_t type_at = pos_;
            tensor.type = read<uint32_t>("a tensor type");
            tensor.offset = read<uint64_t>("a tensor offset");
            size_tensor(tensor, type_at, label);
            header_.tensors.push_back(tensor);
        }
    }

    void size_tensor(TensorInfo& tensor, uint64_t type_at, const std::string& label) {
        const GGMLType* type = find_ggml_type(tensor.type);
        if (type == nullptr) {
            warn(type_at, label + " has ggml type " + std::to_string(tensor.type)
                              + ", unknown to this build; its size is unknown");
            return;
        }
        if (type->status == TypeStatus::Removed) {
            fail(type_at, label + " uses ggml type " + std::to_string(tensor.type) + " ("
                              + type->name
                              + "), which was removed from ggml: no current loader reads it");
        }
        if (tensor.ne[0] % type->block_size != 0) {
            fail(type_at, label + " has rows of " + std::to_string(tensor.ne[0])
                              + " elements, not a multiple of the " + type->name + " block size "
                              + std::to_string(type->block_size));
        }
        const auto nbytes = tensor_nbytes(*type, tensor.ne[0], tensor.n_elements);
        if (!nbytes || !checked_align_up(*nbytes, header_.alignment)) {
            fail(type_at, label + " is too large: its byte size overflows 64 bits");
        }
        tensor.nbytes = nbytes;
    }

    void place_data_section() {
        if (header_.n_tensors == 0) {
            // llama.cpp does not pad a file without tensors (vocab-only files end here).
            header_.data_offset = pos_;
            return;
        }
        const auto data_offset = checked_align_up(pos_, header_.alignment);
        if (!data_offset) {
            fail(pos_, "the data section offset overflows 64 bits");
        }
        header_.data_offset = *data_offset;
    }

    void check_tensor_data() {
        const uint64_t alignment = header_.alignment;
        uint64_t expected_offset = 0;  // llama.cpp's rule: packed in info order
        bool packed_in_order = true;
        uint64_t data_end = header_.data_offset;
        const TensorInfo* last_tensor = nullptr;
        for (const TensorInfo& tensor : header_.tensors) {
            const std::string label = "tensor '" + printable(tensor_name(tensor)) + "'";
            if (tensor.offset % alignment != 0) {
                fail(tensor.record_offset, label + " data offset " + std::to_string(tensor.offset)
                                               + " is not a multiple of the alignment "
                                               + std::to_string(alignment));
            }
            const auto start = checked_add(header_.data_offset, tensor.offset);
            const auto end = start ? checked_add(*start, tensor.nbytes.value_or(0)) : start;
            if (!end) {
                fail(tensor.record_offset, label + " data offset " + std::to_string(tensor.offset)
                                               + " lies beyond any possible file end");
            }
            if (*end > data_end) {
                data_end = *end;
                last_tensor = &tensor;
            }
            if (packed_in_order && tensor.offset != expected_offset) {
                packed_in_order = false;
                warn(tensor.record_offset,
                     label + " starts at data offset " + std::to_string(tensor.offset)
                         + " instead of " + std::to_string(expected_offset)
                         + ": tensors are not packed in info order, which llama.cpp refuses");
            }
            const uint64_t padded = *checked_align_up(tensor.nbytes.value_or(0), alignment);
            // A sum of padded sizes that fit in the file cannot overflow; if it would, the
            // end check below fails first, so saturate instead of wrapping.
            expected_offset = checked_add(expected_offset, padded).value_or(UINT64_MAX);
            header_.data_size = checked_add(header_.data_size, padded).value_or(UINT64_MAX);
        }
        check_overlaps();
        if (file_size_ && data_end > *file_size_) {
            const std::string who
                = last_tensor ? "tensor '" + printable(tensor_name(*last_tensor)) + "' data"
                              : "the data section";
            throw GGUFError(ErrorKind::Truncated, name_, header_.data_offset,
                            who + " ends at byte " + std::to_string(data_end) + " but the file has "
                                + std::to_string(*file_size_)
                                + " bytes: it is truncated (an incomplete download?)",
                            data_end);
        }
    }

    void check_overlaps() {
        std::vector<uint32_t> order(header_.tensors.size());
        std::iota(order.begin(), order.end(), 0u);
        const auto& tensors = header_.tensors;
        std::sort(order.begin(), order.end(),
                  [&](uint32_t a, uint32_t b) { return tensors[a].offset < tensors[b].offset; });
        for (size_t k = 1; k < order.size(); ++k) {
            const TensorInfo& before = tensors[order[k - 1]];
            const TensorInfo& after = tensors[order[k]];
            // Offsets were bounded above, so offset + nbytes cannot overflow here.
            if (before.offset + before.nbytes.value_or(0) > after.offset) {
                fail(after.record_offset,
                     "tensor '" + printable(tensor_name(after)) + "' data at offset "
                         + std::to_string(after.offset) + " overlaps tensor '"
                         + printable(tensor_name(before)) + "' (offset "
                         + std::to_string(before.offset) + ", "
                         + std::to_string(before.nbytes.value_or(0)) + " bytes)");
            }
        }
    }

    [[nodiscard]] std::string_view tensor_name(const TensorInfo& t) const {
        return {reinterpret_cast<const char*>(data_ + t.name_offset), t.name_size};
    }

    const uint8_t* data_;
    uint64_t available_;
    std::optional<uint64_t> file_size_;
    const std::string& name_;
    const Limits& limits_;
    Header& header_;
    uint64_t pos_ = 0;
};

}  // namespace

uint64_t fixed_value_size(ValueType type) noexcept {
    switch (type) {
    case ValueType::Uint8:
    case ValueType::Int8:
    case ValueType::Bool:
        return 1;
    case ValueType::Uint16:
    case ValueType::Int16:
        return 2;
    case ValueType::Uint32:
    case ValueType::Int32:
    case ValueType::Float32:
        return 4;
    case ValueType::Uint64:
    case ValueType::Int64:
    case ValueType::Float64:
        return 8;
    case ValueType::String:
    case ValueType::Array:
        return 0;
    }
    return 0;
}

const char* value_type_name(ValueType type) noexcept {
    static constexpr const char* kNames[kValueTypeCount] = {
        "UINT8", "INT8",   "UINT16", "INT16",  "UINT32", "INT32",   "FLOAT32",
        "BOOL",  "STRING", "ARRAY",  "UINT64", "INT64",  "FLOAT64",
    };
    const auto index = static_cast<uint32_t>(type);
    return index < kValueTypeCount ? kNames[index] : "UNKNOWN";
}

GGUFError::GGUFError(ErrorKind kind, std::string source_name, uint64_t offset,
                     const std::string& what, uint64_t bytes_needed)
    : std::invalid_argument(format_message(source_name, offset, what))
    , kind_(kind)
    , source_name_(std::move(source_name))
    , offset_(offset)
    , bytes_needed_(bytes_needed) {}

Header parse_header(const uint8_t* data, uint64_t available, std::optional<uint64_t> file_size,
                    const std::string& name, const Limits& limits) {
    Header header;
    header.file_size = file_size;
    Walker(data, available, file_size, name, limits, header).run();
    return header;
}

Scalar read_scalar(const Document& document, const Value& value) {
    const uint8_t* p = document.source->data() + value.offset;
    const bool swap = document.header.big_endian;
    switch (value.type) {
    case ValueType::Uint8:
        return uint64_t{load<uint8_t>(p, swap)};
    case ValueType::Int8:
        return int64_t{static_cast<int8_t>(load<uint8_t>(p, swap))};
    case ValueType::Uint16:
        return uint64_t{load<uint16_t>(p, swap)};
    case ValueType::Int16:
        return int64_t{static_cast<int16_t>(load<uint16_t>(p, swap))};
    case ValueType::Uint32:
        return uint64_t{load<uint32_t>(p, swap)};
    case ValueType::Int32:
        return int64_t{static_cast<int32_t>(load<uint32_t>(p, swap))};
    case ValueType::Uint64:
        return load<uint64_t>(p, swap);
    case ValueType::Int64:
        return static_cast<int64_t>(load<uint64_t>(p, swap));
    case ValueType::Float32: {
        const uint32_t bits = load<uint32_t>(p, swap);
        float f;
        std::memcpy(&f, &bits, sizeof f);
        return double{f};
    }
    case ValueType::Float64: {
        const uint64_t bits = load<uint64_t>(p, swap);
        double d;
        std::memcpy(&d, &bits, sizeof d);
        return d;
    }
    case ValueType::Bool:
        return p[0] != 0;
    case ValueType::String:
    case ValueType::Array:
        break;
    }
    throw std::invalid_argument(std::string("read_scalar: ") + value_type_name(value.type)
                                + " is not a fixed-size type");
}

std::string_view Document::bytes_at(uint64_t offset, uint64_t size) const {
    return {reinterpret_cast<const char*>(source->data() + offset), static_cast<size_t>(size)};
}

std::shared_ptr<const Document> parse_source(std::shared_ptr<const ByteSource> source,
                                             std::optional<uint64_t> file_size,
                                             const Limits& limits) {
    auto document = std::make_shared<Document>();
    document->header
        = parse_header(source->data(), source->size(), file_size, source->name(), limits);
    document->source = std::move(source);
    return document;
}

std::shared_ptr<const Document> open_file(const std::string& path, const Limits& limits) {
    try {
        OpenedFile file = map_file(path);
        return parse_source(std::move(file.source), file.file_size, limits);
    } catch (const FileError& error) {
        if (error.code().value() != ENOMEM) {
            throw;
        }
    }
    // The address space cannot hold the whole file: read only the header, growing the read
    // until the walk stops asking for more.
    uint64_t prefix = uint64_t{16} << 20;
    while (true) {
        OpenedFile file = read_file_prefix(path, prefix);
        const bool whole_file = file.source->size() >= file.file_size;
        try {
            return parse_source(std::move(file.source), file.file_size, limits);
        } catch (const GGUFError& error) {
            if (error.kind() != ErrorKind::NeedMoreData || whole_file) {
                throw;
            }
            prefix = std::max(error.bytes_needed(), prefix * 2);
        }
    }
}

StringCursor::StringCursor(const Document& document, const StringArrayIndex& index, uint64_t start)
    : document_(document), index_(index) {
    if (start >= index.count) {
        position_ = index.end;
        return;
    }
    position_ = index.checkpoints[static_cast<size_t>(start / kStringIndexStride)];
    for (uint64_t skip = start % kStringIndexStride; skip > 0; --skip) {
        next();
    }
}

std::string_view StringCursor::next() {
    const Header& header = document_.header;
    const uint8_t* data = document_.source->data();
    const uint64_t length_size = header.length_size;
    // The parse checked these bounds; checking again costs little and turns a file that
    // changed under its mapping into an error instead of a wild read.
    if (index_.end - position_ < length_size) {
        throw GGUFError(ErrorKind::Malformed, document_.source->name(), position_,
                        "string array no longer matches its parse: the file changed on disk");
    }
    const uint64_t size = length_size == 8 ? load<uint64_t>(data + position_, header.big_endian)
                                           : load<uint32_t>(data + position_, header.big_endian);
    position_ += length_size;
    if (size > index_.end - position_) {
        throw GGUFError(ErrorKind::Malformed, document_.source->name(), position_,
                        "string array no longer matches its parse: the file changed on disk");
    }
    const std::string_view bytes(reinterpret_cast<const char*>(data + position_),
                                 static_cast<size_t>(size));
    position_ += size;
    return bytes;
}

std::string_view string_at(const Document& document, const StringArrayIndex& index, uint64_t i) {
    if (i >= index.count) {
        throw std::out_of_range("string array index " + std::to_string(i) + " out of range for "
                                + std::to_string(index.count) + " elements");
    }
    return StringCursor(document, index, i).next();
}

}  // namespace iris::gguf
