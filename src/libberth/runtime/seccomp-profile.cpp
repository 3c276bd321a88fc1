#include "runtime/seccomp-profile.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "basic/fs-util.h"
#include "runtime/capabilities.h"

namespace berth::runtime {

namespace {

using nlohmann::json;

Result<SeccompAction> parse_action(const std::string& text, const std::string& where) {
    if (text == "SCMP_ACT_ALLOW") return SeccompAction::Allow;
    if (text == "SCMP_ACT_ERRNO") return SeccompAction::Errno;
    if (text == "SCMP_ACT_KILL" || text == "SCMP_ACT_KILL_THREAD") return SeccompAction::Kill;
    if (text == "SCMP_ACT_KILL_PROCESS") return SeccompAction::KillProcess;
    if (text == "SCMP_ACT_TRAP") return SeccompAction::Trap;
    if (text == "SCMP_ACT_TRACE") return SeccompAction::Trace;
    if (text == "SCMP_ACT_LOG") return SeccompAction::Log;
    return fail(EINVAL, "{}: unknown action '{}'", where, text);
}

Result<SeccompOp> parse_op(const std::string& text, const std::string& where) {
    if (text == "SCMP_CMP_NE") return SeccompOp::NotEqual;
    if (text == "SCMP_CMP_LT") return SeccompOp::LessThan;
    if (text == "SCMP_CMP_LE") return SeccompOp::LessEqual;
    if (text == "SCMP_CMP_EQ") return SeccompOp::Equal;
    if (text == "SCMP_CMP_GE") return SeccompOp::GreaterEqual;
    if (text == "SCMP_CMP_GT") return SeccompOp::GreaterThan;
    if (text == "SCMP_CMP_MASKED_EQ") return SeccompOp::MaskedEqual;
    return fail(EINVAL, "{}: unknown operator '{}'", where, text);
}

std::vector<std::string> string_list(const json& j) {
    std::vector<std::string> out;
    if (j.is_array())
        for (const auto& e : j)
            if (e.is_string()) out.push_back(e.get<std::string>());
    return out;
}

// Only the checks we can honour: a rule restricted to other architectures is dropped.
bool arches_match(const json& cond) {
    if (!cond.is_object() || !cond.contains("arches")) return true;
    for (const auto& a : string_list(cond["arches"]))
        if (a == "amd64" || a == "x86_64" || a == "SCMP_ARCH_X86_64") return true;
    return false;
}

// Docker lists ABIs in "architectures" and, per native one, in "archMap"[].subArchitectures.
bool lists_compat_abi(const json& root) {
    std::string compat = seccomp_compat_abi();
    if (compat.empty()) return false;
    auto has = [&](const std::vector<std::string>& v) {
        return std::find(v.begin(), v.end(), compat) != v.end();
    };
    if (root.contains("architectures") && has(string_list(root["architectures"]))) return true;
    if (root.contains("archMap") && root["archMap"].is_array())
        for (const auto& m : root["archMap"])
            if (m.is_object() && m.value("architecture", "") == seccomp_native_abi() &&
                m.contains("subArchitectures") && has(string_list(m["subArchitectures"])))
                return true;
    return false;
}

Result<SeccompProfile> parse_profile_object(const json& root, const std::string& origin) {
    if (!root.is_object()) return fail(EINVAL, "{}: expected a JSON object", origin);
    SeccompProfile p;
    p.abis = lists_compat_abi(root) ? SeccompAbis::NativeAndCompat : SeccompAbis::Native;
    if (!root.contains("defaultAction") || !root["defaultAction"].is_string())
        return fail(EINVAL, "{}: missing \"defaultAction\"", origin);
    p.default_action = BERTH_TRY(parse_action(root["defaultAction"].get<std::string>(), origin));
    p.default_errno = 1;
    if (root.contains("defaultErrnoRet")) {
        if (!root["defaultErrnoRet"].is_number_unsigned())
            return fail(EINVAL, "{}: \"defaultErrnoRet\" must be a number", origin);
        p.default_errno = root["defaultErrnoRet"].get<int>();
    }
    if (!root.contains("syscalls")) return p;
    const json& syscalls = root["syscalls"];
    if (!syscalls.is_array()) return fail(EINVAL, "{}: \"syscalls\" must be an array", origin);
    size_t index = 0;
    for (const auto& entry : syscalls) {
        std::string where = fmt::format("{}: syscalls[{}]", origin, index++);
        if (!entry.is_object()) return fail(EINVAL, "{}: expected an object", where);
        SeccompRule rule;
        if (entry.contains("names")) rule.names = string_list(entry["names"]);
        if (entry.contains("name") && entry["name"].is_string())
            rule.names.push_back(entry["name"].get<std::string>());
        if (rule.names.empty()) return fail(EINVAL, "{}: no syscall \"names\"", where);
        if (!entry.contains("action") || !entry["action"].is_string())
            return fail(EINVAL, "{}: missing \"action\"", where);
        rule.action = BERTH_TRY(parse_action(entry["action"].get<std::string>(), where));
        rule.errno_ret = p.default_errno;
        if (entry.contains("errnoRet")) {
            if (!entry["errnoRet"].is_number_unsigned())
                return fail(EINVAL, "{}: \"errnoRet\" must be a number", where);
            rule.errno_ret = entry["errnoRet"].get<int>();
        }
        if (entry.contains("args") && !entry["args"].is_null()) {
            if (!entry["args"].is_array()) return fail(EINVAL, "{}: \"args\" must be an array", where);
            for (const auto& a : entry["args"]) {
                if (!a.is_object() || !a.contains("index") || !a.contains("value") || !a.contains("op"))
                    return fail(EINVAL, "{}: each arg needs index, value and op", where);
                SeccompArg arg;
                if (!a["index"].is_number_unsigned() || a["index"].get<unsigned>() > 5)
                    return fail(EINVAL, "{}: arg index must be 0..5", where);
                arg.index = a["index"].get<unsigned>();
                if (!a["value"].is_number_unsigned())
                    return fail(EINVAL, "{}: arg value must be a number", where);
                arg.value = a["value"].get<uint64_t>();
                if (a.contains("valueTwo")) {
                    if (!a["valueTwo"].is_number_unsigned())
                        return fail(EINVAL, "{}: arg valueTwo must be a number", where);
                    arg.value_two = a["valueTwo"].get<uint64_t>();
                }
                if (!a["op"].is_string()) return fail(EINVAL, "{}: arg op must be a string", where);
                arg.op = BERTH_TRY(parse_op(a["op"].get<std::string>(), where));
                rule.args.push_back(arg);
            }
        }
        if (entry.contains("includes")) {
            const json& inc = entry["includes"];
            if (!arches_match(inc)) continue;
            if (inc.is_object() && inc.contains("caps")) rule.includes_caps = string_list(inc["caps"]);
            if (inc.is_object() && inc.contains("minKernel") && inc["minKernel"].is_string())
                rule.min_kernel = inc["minKernel"].get<std::string>();
        }
        if (entry.contains("excludes")) {
            const json& exc = entry["excludes"];
            if (exc.is_object() && exc.contains("arches")) {
                bool excluded = false;
                for (const auto& a : string_list(exc["arches"]))
                    if (a == "amd64" || a == "x86_64" || a == "SCMP_ARCH_X86_64") excluded = true;
                if (excluded) continue;
            }
            if (exc.is_object() && exc.contains("caps")) rule.excludes_caps = string_list(exc["caps"]);
        }
        for (const auto& cap : rule.includes_caps) BERTH_TRY_VOID_CTX(capability_from_name(cap), where);
        for (const auto& cap : rule.excludes_caps) BERTH_TRY_VOID_CTX(capability_from_name(cap), where);
        p.rules.push_back(std::move(rule));
    }
    return p;
}

// "6.1.0-13-amd64" -> {6, 1}.
std::pair<int, int> kernel_version(const std::string& release) {
    int major = 0, minor = 0;
    std::sscanf(release.c_str(), "%d.%d", &major, &minor);
    return {major, minor};
}

}  // namespace

const char* seccomp_native_abi() {
#if defined(__x86_64__)
    return "SCMP_ARCH_X86_64";
#elif defined(__aarch64__)
    return "SCMP_ARCH_AARCH64";
#elif defined(__s390x__)
    return "SCMP_ARCH_S390X";
#else
    return "";
#endif
}

const char* seccomp_compat_abi() {
#if defined(__x86_64__)
    return "SCMP_ARCH_X86";
#elif defined(__aarch64__)
    return "SCMP_ARCH_ARM";
#elif defined(__s390x__)
    return "SCMP_ARCH_S390";
#else
    return "";
#endif
}

Result<SeccompProfile> parse_seccomp_profile(const std::string& json_text, const std::string& origin) {
    json root = json::parse(json_text, nullptr, false);
    if (root.is_discarded()) return fail(EINVAL, "seccomp profile '{}': not valid JSON", origin);
    if (root.is_object() && root.contains("linux") && root["linux"].is_object() &&
        root["linux"].contains("seccomp"))
        return with_context(parse_profile_object(root["linux"]["seccomp"], origin), "seccomp profile");
    return with_context(parse_profile_object(root, origin), "seccomp profile");
}

Result<SeccompProfile> load_seccomp_profile(const std::string& path) {
    auto text = read_file(path);
    if (!text) return fail(text.error().wrap("seccomp profile"));
    return parse_seccomp_profile(*text, path);
}

std::vector<SeccompRule> resolve_seccomp_rules(const SeccompProfile& profile, uint64_t caps,
                                               const std::string& kernel_release) {
    auto has_cap = [&](const std::string& name) {
        auto c = capability_from_name(name);
        return c && (caps & (uint64_t{1} << *c));
    };
    auto kv = kernel_version(kernel_release);
    std::vector<SeccompRule> out;
    for (const auto& rule : profile.rules) {
        bool ok = true;
        for (const auto& c : rule.includes_caps) ok = ok && has_cap(c);
        for (const auto& c : rule.excludes_caps) ok = ok && !has_cap(c);
        if (!rule.min_kernel.empty()) ok = ok && kv >= kernel_version(rule.min_kernel);
        if (!ok) continue;
        SeccompRule r = rule;
        r.includes_caps.clear();
        r.excludes_caps.clear();
        r.min_kernel.clear();
        out.push_back(std::move(r));
    }
    return out;
}

std::string serialize_seccomp(SeccompAction default_action, int default_errno,
                              const std::vector<SeccompRule>& rules) {
    std::string out = fmt::format("default {} {}\n", static_cast<int>(default_action), default_errno);
    for (const auto& r : rules) {
        out += fmt::format("rule {} {}", static_cast<int>(r.action), r.errno_ret);
        for (const auto& a : r.args)
            out += fmt::format(" arg{}:{}:{}:{}", a.index, static_cast<int>(a.op), a.value, a.value_two);
        for (const auto& n : r.names) out += " " + n;
        out += "\n";
    }
    return out;
}

}  // namespace berth::runtime
