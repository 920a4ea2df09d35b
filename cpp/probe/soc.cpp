#include "probe/soc.hpp"

#include <algorithm>
#include <array>
#include <fstream>
#include <sstream>

namespace iris::probe {
namespace {

std::string trimmed(const std::string& text) {
    const auto first = text.find_first_not_of(" \t\r\n");
    if (first == std::string::npos) {
        return {};
    }
    const auto last = text.find_last_not_of(" \t\r\n");
    return text.substr(first, last - first + 1);
}

void add_distinct(std::vector<std::string>& values, const std::string& value) {
    if (!value.empty() && std::find(values.begin(), values.end(), value) == values.end()) {
        values.push_back(value);
    }
}

}  // namespace

CpuInfoText parse_cpuinfo(const std::string& text) {
    CpuInfoText info;
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
        const auto colon = line.find(':');
        if (colon == std::string::npos) {
            continue;
        }
        const std::string key = trimmed(line.substr(0, colon));
        const std::string value = trimmed(line.substr(colon + 1));
        if (key == "processor") {
            ++info.processors;
        } else if (key == "Hardware") {
            info.hardware = value;
        } else if (key == "model name" || key == "Processor") {
            if (info.model_name.empty()) {
                info.model_name = value;
            }
        } else if ((key == "Features" || key == "flags") && info.features.empty()) {
            std::istringstream words(value);
            std::string word;
            while (words >> word) {
                add_distinct(info.features, word);
            }
        } else if (key == "CPU part") {
            add_distinct(info.cpu_parts, value);
        } else if (key == "CPU implementer") {
            add_distinct(info.implementers, value);
        }
    }
    return info;
}

std::string read_text_file(const std::string& path, std::size_t limit) {
    std::ifstream file(path, std::ios::binary);
    if (!file) {
        return {};
    }
    // sysfs and procfs files report a size of 0 or 4096, so read until end of file.
    std::string text;
    std::array<char, 4096> chunk{};
    while (text.size() < limit && file.read(chunk.data(), chunk.size()).gcount() > 0) {
        text.append(chunk.data(), static_cast<std::size_t>(file.gcount()));
    }
    if (text.size() > limit) {
        text.resize(limit);
    }
    return text;
}

SocFiles read_soc_files(const std::string& soc_root) {
    const auto attribute = [&soc_root](const char* name) {
        return trimmed(read_text_file(soc_root + "/" + name, 4096));
    };
    SocFiles soc;
    soc.machine = attribute("machine");
    soc.family = attribute("family");
    soc.soc_id = attribute("soc_id");
    soc.vendor = attribute("vendor");
    soc.revision = attribute("revision");
    return soc;
}

}  // namespace iris::probe
