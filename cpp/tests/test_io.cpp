// Unit tests for the io area: the part file a download writes into, and hashing its ranges.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "check.hpp"
#include "common/byte_source.hpp"
#include "hash/sha256.hpp"
#include "io/part_file.hpp"

using iris::hash::Sha256;
using iris::io::PartFile;

namespace {

std::vector<uint8_t> random_bytes(size_t size, unsigned seed) {
    std::mt19937 generator(seed);
    std::vector<uint8_t> out(size);
    for (uint8_t& byte : out) {
        byte = static_cast<uint8_t>(generator() & 0xFF);
    }
    return out;
}

std::string temp_path() {
    std::string pattern = (std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp")
                          + std::string("/iris-io-test-XXXXXX");
    const int fd = ::mkstemp(pattern.data());
    ::close(fd);
    return pattern;
}

std::string hex_of(const std::vector<uint8_t>& data) {
    Sha256 hasher;
    hasher.update(data.data(), data.size());
    return iris::hash::to_hex(hasher.digest());
}

}  // namespace

TEST(writes_in_any_order_read_back_as_one_file) {
    const std::string path = temp_path();
    const std::vector<uint8_t> data = random_bytes(3'000'017, 11);
    {
        PartFile file(path);
        file.reserve(data.size());
        CHECK(file.size() == data.size());
        std::vector<std::pair<size_t, size_t>> pieces;
        for (size_t start = 0; start < data.size(); start += 65'537) {
            pieces.emplace_back(start, std::min<size_t>(65'537, data.size() - start));
        }
        std::shuffle(pieces.begin(), pieces.end(), std::mt19937(5));
        for (const auto& [start, size] : pieces) {
            file.write_at(start, data.data() + start, size);
        }
        file.sync();
        std::vector<uint8_t> back(data.size());
        CHECK(file.read_at(0, back.data(), back.size()) == data.size());
        CHECK(back == data);
        Sha256 whole;
        Sha256 piece;
        iris::io::hash_range(file, {&whole, &piece}, 0, data.size());
        CHECK(iris::hash::to_hex(whole.digest()) == hex_of(data));
        CHECK(iris::hash::to_hex(piece.digest()) == hex_of(data));
        CHECK_THROWS_AS(iris::io::hash_range(file, {&whole}, data.size() - 10, 20),
                        std::out_of_range, [](auto&) {});
    }
    std::remove(path.c_str());
}

TEST(reserve_never_shrinks_and_truncate_sets_the_length) {
    const std::string path = temp_path();
    PartFile file(path);
    file.reserve(1 << 20);
    file.reserve(1000);
    CHECK(file.size() == (1u << 20));
    file.truncate(10);
    CHECK(file.size() == 10);
    file.close();
    CHECK(!file.is_open());
    const uint8_t byte = 1;
    CHECK_THROWS_AS(file.write_at(0, &byte, 1), iris::FileError,
                    [](const iris::FileError& caught) { CHECK(caught.code().value() == EBADF); });
    std::remove(path.c_str());
}

TEST(a_missing_folder_is_a_file_error_with_errno) {
    CHECK_THROWS_AS(PartFile("/nonexistent-iris/x.part"), iris::FileError,
                    [](const iris::FileError& caught) { CHECK(caught.code().value() == ENOENT); });
}

int main() {
    return iris::testing::run_all();
}
