// A minimal test harness for the core's unit tests: TEST registers a function, CHECK records
// a failure with its location and goes on, main() runs everything and prints a summary line.
// Small on purpose: the core must build and test with nothing but a C++ compiler.
#pragma once

#include <cstdio>
#include <exception>
#include <functional>
#include <string>
#include <vector>

namespace iris::testing {

struct TestCase {
    const char* name;
    std::function<void()> body;
};

inline std::vector<TestCase>& registry() {
    static std::vector<TestCase> tests;
    return tests;
}

inline int& failure_count() {
    static int failures = 0;
    return failures;
}

struct Registrar {
    Registrar(const char* name, std::function<void()> body) {
        registry().push_back({name, std::move(body)});
    }
};

inline void report_failure(const char* file, int line, const std::string& what) {
    std::fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, what.c_str());
    ++failure_count();
}

inline int run_all() {
    int passed = 0;
    int failed = 0;
    for (const TestCase& test : registry()) {
        const int before = failure_count();
        try {
            test.body();
        } catch (const std::exception& error) {
            report_failure(test.name, 0, std::string("unexpected exception: ") + error.what());
        }
        if (failure_count() == before) {
            ++passed;
        } else {
            ++failed;
            std::fprintf(stderr, "  in test %s\n", test.name);
        }
    }
    std::printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}

}  // namespace iris::testing

#define IRIS_CONCAT_INNER(a, b) a##b
#define IRIS_CONCAT(a, b) IRIS_CONCAT_INNER(a, b)

#define TEST(name)                                                                      \
    static void name();                                                                 \
    static const ::iris::testing::Registrar IRIS_CONCAT(registrar_, name)(#name, name); \
    static void name()

#define CHECK(condition)                                                     \
    do {                                                                     \
        if (!(condition)) {                                                  \
            ::iris::testing::report_failure(__FILE__, __LINE__, #condition); \
        }                                                                    \
    } while (false)

/// Checks that `statement` throws `exception_type`, then runs `inspect` on the exception.
#define CHECK_THROWS_AS(statement, exception_type, inspect)                                   \
    do {                                                                                      \
        bool thrown_ = false;                                                                 \
        try {                                                                                 \
            statement;                                                                        \
        } catch (const exception_type& error) {                                               \
            thrown_ = true;                                                                   \
            inspect(error);                                                                   \
        } catch (const std::exception& other) {                                               \
            ::iris::testing::report_failure(__FILE__, __LINE__,                               \
                                            std::string("wrong exception: ") + other.what()); \
            thrown_ = true;                                                                   \
        }                                                                                     \
        if (!thrown_) {                                                                       \
            ::iris::testing::report_failure(__FILE__, __LINE__, #statement " did not throw"); \
        }                                                                                     \
    } while (false)
