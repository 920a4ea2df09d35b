// Unit tests for the hash area: known answers, backends against each other, incremental
// updates, and file digests, manifests and pools on temporary files.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

#include "check.hpp"
#include "hash/file_hash.hpp"
#include "hash/sha256.hpp"

using iris::hash::Sha256;
using iris::hash::Sha256Backend;

namespace {

std::string sha256_hex(const std::string& data, Sha256Backend backend) {
    Sha256 hasher(backend);
    hasher.update(reinterpret_cast<const uint8_t*>(data.data()), data.size());
    return iris::hash::to_hex(hasher.digest());
}

std::string random_bytes(size_t size, unsigned seed) {
    std::mt19937 generator(seed);
    std::string out(size, '\0');
    for (char& c : out) {
        c = static_cast<char>(generator() & 0xFF);
    }
    return out;
}

/// A file in the temporary directory, removed when the object goes.
class TempFile {
public:
    explicit TempFile(const std::string& contents) {
        std::string pattern = (std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp")
                              + std::string("/iris-hash-test-XXXXXX");
        const int fd = ::mkstemp(pattern.data());
        ::close(fd);
        path_ = pattern;
        std::ofstream(path_, std::ios::binary) << contents;
    }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    ~TempFile() { std::remove(path_.c_str()); }
    [[nodiscard]] const std::string& path() const { return path_; }

private:
    std::string path_;
};

}  // namespace

TEST(nist_vectors_through_every_backend) {
    const std::string million_a(1'000'000, 'a');
    const std::pair<std::string, std::string> vectors[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklm"
         "nopqrlmnopqrsmnopqrstnopqrstu",
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
        {million_a, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
    };
    CHECK(!iris::hash::available_backends().empty());
    for (const Sha256Backend backend : iris::hash::available_backends()) {
        for (const auto& [message, digest] : vectors) {
            CHECK(sha256_hex(message, backend) == digest);
        }
    }
}

TEST(backends_agree_on_every_length_up_to_300_and_random_lengths) {
    const auto& backends = iris::hash::available_backends();
    const std::string data = random_bytes(1 << 20, 7);
    std::vector<size_t> lengths;
    for (size_t n = 0; n <= 300; ++n) {
        lengths.push_back(n);
    }
    for (size_t n : {1000u, 4095u, 4096u, 65537u, 1u << 20}) {
        lengths.push_back(n);
    }
    for (size_t n : lengths) {
        const std::string prefix = data.substr(0, n);
        const std::string reference = sha256_hex(prefix, Sha256Backend::Portable);
        for (const Sha256Backend backend : backends) {
            CHECK(sha256_hex(prefix, backend) == reference);
        }
    }
}

TEST(incremental_updates_split_anywhere_give_the_same_digest) {
    const std::string data = random_bytes(300, 11);
    const std::string whole = sha256_hex(data, iris::hash::best_backend());
    for (size_t split = 0; split <= data.size(); ++split) {
        Sha256 hasher;
        const auto* bytes = reinterpret_cast<const uint8_t*>(data.data());
        hasher.update(bytes, split);
        const Sha256 copy = hasher;  // a copy continues from the same state
        hasher.update(bytes + split, data.size() - split);
        CHECK(iris::hash::to_hex(hasher.digest()) == whole);
        CHECK(copy.bytes_hashed() == split);
    }
}

TEST(file_digest_matches_memory_and_counts_progress) {
    const std::string data = random_bytes((9u << 20) + 123, 3);  // straddles 4 MiB chunks
    const TempFile file(data);
    iris::hash::Progress progress;
    const auto digest = iris::hash::sha256_file(file.path(), &progress);
    CHECK(digest.size == data.size());
    CHECK(iris::hash::to_hex(digest.sha256) == sha256_hex(data, Sha256Backend::Portable));
    CHECK(progress.bytes_done.load() == data.size());
    CHECK(progress.bytes_total.load() == data.size());
}

TEST(manifest_is_the_same_on_one_thread_and_many_and_finds_a_flipped_byte) {
    std::string data = random_bytes((1u << 20) + 1000, 5);
    const uint64_t piece_size = 64 * 1024;
    const TempFile file(data);
    const auto one = iris::hash::build_manifest(file.path(), piece_size, 1);
    const auto many = iris::hash::build_manifest(file.path(), piece_size, 3);
    CHECK(one.pieces.size() == 17);
    CHECK(one.pieces == many.pieces);
    CHECK(one.sha256 == many.sha256);
    CHECK(iris::hash::to_hex(one.sha256) == sha256_hex(data, Sha256Backend::Portable));
    CHECK(iris::hash::to_hex(one.pieces[16])
          == sha256_hex(data.substr(16 * piece_size), Sha256Backend::Portable));
    CHECK(iris::hash::find_bad_pieces(file.path(), one, 2).empty());

    data[5 * piece_size + 17] ^= 0x01;
    const TempFile flipped(data);
    const auto bad = iris::hash::find_bad_pieces(flipped.path(), one, 2);
    CHECK(bad.size() == 1 && bad[0] == 5);
}

TEST(manifest_for_another_size_is_refused) {
    const TempFile file(random_bytes(1000, 9));
    auto manifest = iris::hash::build_manifest(file.path(), 256, 1);
    manifest.size += 1;
    CHECK_THROWS_AS(iris::hash::find_bad_pieces(file.path(), manifest, 1),
                    iris::hash::ManifestMismatch, [](auto&) {});
}

TEST(cancel_stops_a_hash) {
    const TempFile file(random_bytes(1u << 20, 1));
    iris::hash::Progress progress;
    progress.cancel_requested = true;
    CHECK_THROWS_AS(iris::hash::sha256_file(file.path(), &progress), iris::hash::Cancelled,
                    [](auto&) {});
}

TEST(pool_reports_errors_per_file_and_keeps_order) {
    const std::string a = random_bytes(5000, 1);
    const std::string b = random_bytes(70000, 2);
    const TempFile file_a(a);
    const TempFile file_b(b);
    const auto outcomes = iris::hash::sha256_files(
        {file_a.path(), "/nonexistent/iris-models-test", file_b.path()}, 2);
    CHECK(outcomes.size() == 3);
    CHECK(outcomes[0].error.empty());
    CHECK(iris::hash::to_hex(outcomes[0].digest.sha256) == sha256_hex(a, Sha256Backend::Portable));
    CHECK(!outcomes[1].error.empty() && outcomes[1].error_number == ENOENT);
    CHECK(iris::hash::to_hex(outcomes[2].digest.sha256) == sha256_hex(b, Sha256Backend::Portable));
}

TEST(saved_state_continues_in_a_new_hasher_on_every_backend) {
    const std::string data = random_bytes(300'001, 7);
    const auto* bytes = reinterpret_cast<const uint8_t*>(data.data());
    for (const Sha256Backend backend : iris::hash::available_backends()) {
        const std::string expected = sha256_hex(data, backend);
        for (const size_t split : {size_t{0}, size_t{1}, size_t{63}, size_t{64}, size_t{65},
                                   size_t{4096}, size_t{299'999}, data.size()}) {
            Sha256 first(backend);
            first.update(bytes, split);
            const std::vector<uint8_t> saved = first.save();
            CHECK(saved.size() == Sha256::SAVED_STATE_SIZE);
            Sha256 second = Sha256::restore(saved.data(), saved.size(), backend);
            CHECK(second.bytes_hashed() == split);
            second.update(bytes + split, data.size() - split);
            CHECK(iris::hash::to_hex(second.digest()) == expected);
        }
    }
}

TEST(restore_refuses_bytes_save_did_not_write) {
    Sha256 hasher;
    const std::string data = random_bytes(100, 3);
    hasher.update(reinterpret_cast<const uint8_t*>(data.data()), data.size());
    std::vector<uint8_t> saved = hasher.save();
    CHECK_THROWS_AS(Sha256::restore(saved.data(), saved.size() - 1), std::invalid_argument,
                    [](auto&) {});
    std::vector<uint8_t> wrong_tag = saved;
    wrong_tag[0] ^= 0xFF;
    CHECK_THROWS_AS(Sha256::restore(wrong_tag.data(), wrong_tag.size()), std::invalid_argument,
                    [](auto&) {});
    std::vector<uint8_t> junk_past_pending = saved;
    junk_past_pending.back() = 1;  // 100 % 64 = 36 pending bytes; the last of 64 must be 0
    CHECK_THROWS_AS(Sha256::restore(junk_past_pending.data(), junk_past_pending.size()),
                    std::invalid_argument, [](auto&) {});
}

int main() {
    return iris::testing::run_all();
}
