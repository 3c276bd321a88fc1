// The YAML reader for CDI specs, built as a module that cdi.cpp dlopen()s only when a .yaml spec is
// met (yaml-module.h): libyaml-cpp stays out of every other berth process. yaml-cpp's exceptions
// stop here.
#include "cdi/yaml-module.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

namespace {

char* copy(const std::string& s) {
    char* p = static_cast<char*>(std::malloc(s.size() + 1));
    if (p) std::memcpy(p, s.c_str(), s.size() + 1);
    return p;
}

nlohmann::json to_json(const YAML::Node& node) {
    switch (node.Type()) {
        case YAML::NodeType::Map: {
            nlohmann::json j = nlohmann::json::object();
            for (const auto& kv : node) j[kv.first.as<std::string>()] = to_json(kv.second);
            return j;
        }
        case YAML::NodeType::Sequence: {
            nlohmann::json j = nlohmann::json::array();
            for (const auto& item : node) j.push_back(to_json(item));
            return j;
        }
        case YAML::NodeType::Scalar: {
            const std::string& s = node.Scalar();
            if (node.Tag() == "!") return s;  // quoted: a string whatever it looks like
            if (s == "true" || s == "false") return s == "true";
            if (!s.empty() && s.find_first_not_of("0123456789") == std::string::npos && s.size() < 19) {
                // YAML 1.1 reads a leading 0 as octal (fileMode: 0666), as nvidia-ctk's Go parser does.
                return s.size() > 1 && s[0] == '0' ? std::stoll(s, nullptr, 8) : std::stoll(s);
            }
            if (s.size() > 2 && s[0] == '0' && s[1] == 'o' &&
                s.find_first_not_of("01234567", 2) == std::string::npos)
                return std::stoll(s.substr(2), nullptr, 8);
            return s;
        }
        case YAML::NodeType::Null:
        case YAML::NodeType::Undefined:
            return nullptr;
    }
    return nullptr;
}

}  // namespace

extern "C" __attribute__((visibility("default"))) int berth_cdi_yaml_to_json(const char* yaml, char** out) {
    try {
        *out = copy(to_json(YAML::Load(yaml)).dump());
        return 0;
    } catch (const YAML::Exception& e) {
        *out = copy("line " + std::to_string(e.mark.line + 1) + ", column " +
                    std::to_string(e.mark.column + 1) + ": " + e.msg);
    } catch (const std::exception& e) {
        *out = copy(e.what());
    }
    return 1;
}
