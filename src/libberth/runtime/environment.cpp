#include "runtime/environment.h"

#include "basic/fs-util.h"
#include "basic/string-util.h"

namespace berth::runtime {

Result<std::vector<std::pair<std::string, std::string>>> parse_environment_file(const std::string& text,
                                                                                const std::string& origin) {
    std::vector<std::pair<std::string, std::string>> out;
    int lineno = 0;
    for (const auto& raw : split(text, '\n', true)) {
        ++lineno;
        std::string_view line = trim(raw);
        if (line.empty() || line[0] == '#') continue;
        if (line.substr(0, 7) == "export ") line = trim(line.substr(7));
        auto eq = line.find('=');
        if (eq == std::string_view::npos || eq == 0)
            return fail(EINVAL, "{}:{}: expected KEY=VALUE", origin, lineno);
        std::string key(trim(line.substr(0, eq)));
        for (char c : key)
            if (!(isalnum(static_cast<unsigned char>(c)) || c == '_'))
                return fail(EINVAL, "{}:{}: invalid variable name '{}'", origin, lineno, key);
        std::string value(trim(line.substr(eq + 1)));
        if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
            value.back() == value.front())
            value = value.substr(1, value.size() - 2);
        out.emplace_back(std::move(key), std::move(value));
    }
    return out;
}

Result<std::vector<std::string>> compose_environment(const EnvironmentInputs& in) {
    std::map<std::string, std::string> env;
    for (const auto& kv : in.image_env) {
        auto eq = kv.find('=');
        if (eq == std::string::npos)
            env[kv] = "";
        else
            env[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    for (const auto& file : in.environment_files) {
        auto text = read_file(file);
        if (!text) return fail(text.error().wrap("environment file"));
        for (auto& [k, v] : BERTH_TRY(parse_environment_file(*text, file))) env[k] = v;
    }
    for (const auto& [k, v] : in.table) env[k] = v;
    env["container"] = "berth";
    if (!in.hostname.empty()) env["HOSTNAME"] = in.hostname;
    if (!env.count("HOME")) env["HOME"] = in.home.empty() ? "/" : in.home;
    if (!env.count("PATH")) env["PATH"] = kDefaultPath;
    if (in.tty && !env.count("TERM")) env["TERM"] = "xterm";
    if (!in.notify_socket.empty()) env["NOTIFY_SOCKET"] = in.notify_socket;
    std::vector<std::string> out;
    out.reserve(env.size());
    for (const auto& [k, v] : env) out.push_back(k + "=" + v);
    return out;
}

}  // namespace berth::runtime
