// CDI specs (cdi/cdi.h), [security] devices entries (config/values.h) and the device cgroup
// program builder (runtime/device-cgroup.h), without the kernel.
#include "cdi/cdi.h"

#include <gtest/gtest.h>

#include "basic/fs-util.h"
#include "config/values.h"
#include "runtime/device-cgroup.h"
#include "test-util.h"

namespace berth {
namespace {

const char* kJson = R"({
  "cdiVersion": "0.6.0",
  "kind": "example.com/gpu",
  "containerEdits": {"env": ["VENDOR_ROOT=/opt/vendor"],
                     "mounts": [{"hostPath": "/opt/vendor/lib", "containerPath": "/usr/lib/vendor",
                                 "options": ["ro", "nosuid", "rbind"], "type": "bind"}]},
  "devices": [
    {"name": "0", "containerEdits": {"deviceNodes": [{"path": "/dev/card0", "hostPath": "/dev/dri/card0",
        "type": "c", "major": 226, "minor": 0, "fileMode": 432, "permissions": "rw", "uid": 0, "gid": 44}],
        "env": ["CARD=0"]}},
    {"name": "1", "annotations": {"a": "b"}, "containerEdits": {"deviceNodes": [{"path": "/dev/card1"}],
        "hooks": [{"hookName": "createContainer", "path": "/usr/bin/vendor-hook", "args": ["vendor-hook", "x"],
                   "env": ["A=1"], "timeout": 5}]}}
  ]
})";

const char* kYaml = R"(---
cdiVersion: "0.6.0"
kind: example.com/gpu
containerEdits:
  env:
  - VENDOR_ROOT=/opt/vendor
  mounts:
  - hostPath: /opt/vendor/lib
    containerPath: /usr/lib/vendor
    options: [ro, nosuid, rbind]
    type: bind
devices:
- name: "0"
  containerEdits:
    deviceNodes:
    - path: /dev/card0
      hostPath: /dev/dri/card0
      type: c
      major: 226
      minor: 0
      fileMode: 0660
      permissions: rw
      uid: 0
      gid: 44
    env: [CARD=0]
- name: "1"
  annotations:
    a: b
  containerEdits:
    deviceNodes:
    - path: /dev/card1
    hooks:
    - hookName: createContainer
      path: /usr/bin/vendor-hook
      args: [vendor-hook, x]
      env: [A=1]
      timeout: 5
)";

TEST(CdiSpec, TheSameSpecInJsonAndYamlGivesTheSameEdits) {
    auto json = cdi::parse_spec_json(kJson, "vendor.json");
    ASSERT_TRUE(json) << json.error().what();
    auto yaml = cdi::parse_spec_yaml(kYaml, "vendor.json");
    ASSERT_TRUE(yaml) << yaml.error().what();
    EXPECT_EQ(*json, *yaml);
    ASSERT_EQ(json->devices.size(), 2u);
    const auto& node = json->devices[0].edits.device_nodes.at(0);
    EXPECT_EQ(node.host_path, "/dev/dri/card0");
    EXPECT_EQ(node.major, 226u);
    EXPECT_EQ(node.file_mode, 0660u);
    EXPECT_EQ(node.gid, 44u);
    EXPECT_EQ(json->edits.mounts.at(0).options, (std::vector<std::string>{"ro", "nosuid", "rbind"}));
    EXPECT_EQ(json->devices[1].edits.hooks.at(0).kind, cdi::HookKind::CreateContainer);
    EXPECT_EQ(json->devices[1].edits.hooks.at(0).timeout_s, 5u);
}

void expect_error(const std::string& text, const std::string& want) {
    auto spec = cdi::parse_spec_json(text, "/etc/cdi/bad.json");
    ASSERT_FALSE(spec) << text;
    EXPECT_NE(spec.error().what().find("CDI spec '/etc/cdi/bad.json'"), std::string::npos)
        << spec.error().what();
    EXPECT_NE(spec.error().what().find(want), std::string::npos) << spec.error().what();
}

TEST(CdiSpec, ErrorsNameTheFileAndTheField) {
    expect_error(R"({"cdiVersion":"0.3.0","kind":"a.com/b","devices":[{"name":"x","containerEdits":)"
                 R"({"deviceNodes":[{"path":"/dev/x","major":-1}]}}]})",
                 "devices[0].containerEdits.deviceNodes[0].major: is -1");
    expect_error(R"({"cdiVersion":"0.3.0","kind":"a.com/b","devices":[{"name":"x","containerEdits":)"
                 R"({"mounts":[{"hostPath":"/a","containerPath":"/b","typo":1}]}}]})",
                 "devices[0].containerEdits.mounts[0].typo: is not a field berth knows");
    expect_error(R"({"cdiVersion":"0.3.0","kind":"a.com/b","devices":[{"name":"x","containerEdits":)"
                 R"({"hooks":[{"hookName":"prestart","path":"/h"}]}}]})",
                 "devices[0].containerEdits.hooks[0].hookName: is 'prestart'");
    expect_error(R"({"cdiVersion":"0.3.0","kind":"nokind","devices":[]})", "kind: is 'nokind'");
    expect_error(R"({"cdiVersion":"0.3.0","kind":"a.com/b","devices":[]})", "devices: is missing or empty");
    expect_error("{\"cdiVersion\":", "not valid JSON");
}

TEST(CdiSpec, VersionsAreCheckedAgainstTheFeaturesUsed) {
    for (const auto& v : cdi::known_versions()) {
        std::string text = fmt::format(
            R"({{"cdiVersion":"{}","kind":"a.com/b","devices":[{{"name":"x","containerEdits":{{"env":["A=1"]}}}}]}})",
            v);
        EXPECT_TRUE(cdi::parse_spec_json(text, "ok.json")) << v;
    }
    expect_error(R"({"cdiVersion":"0.2.0","kind":"a.com/b","devices":[{"name":"x","containerEdits":{}}]})",
                 "cdiVersion: is '0.2.0', expected one of 0.3.0");
    // hostPath came with 0.5.0, mount types with 0.4.0, annotations with 0.6.0.
    expect_error(R"({"cdiVersion":"0.4.0","kind":"a.com/b","devices":[{"name":"x","containerEdits":)"
                 R"({"deviceNodes":[{"path":"/dev/x","hostPath":"/dev/y"}]}}]})",
                 "is '0.4.0' but devices[0].containerEdits.deviceNodes[0].hostPath needs 0.5.0");
    expect_error(R"({"cdiVersion":"0.3.0","kind":"a.com/b","devices":[{"name":"x","containerEdits":)"
                 R"({"mounts":[{"hostPath":"/a","containerPath":"/b","type":"bind"}]}}]})",
                 "needs 0.4.0");
    expect_error(R"({"cdiVersion":"0.5.0","kind":"a.com/b","annotations":{"k":"v"},"devices":[{"name":"x",)"
                 R"("containerEdits":{}}]})",
                 "annotations needs 0.6.0");
    expect_error(R"({"cdiVersion":"1.1.0","kind":"a.com/b","devices":[{"name":"x","containerEdits":)"
                 R"({"netDevices":[{"hostInterfaceName":"eth1","name":"eth1"}]}}]})",
                 "netDevices: is not supported by berth");
}

TEST(CdiRegistry, ResolvesNamesAllAndLaterDirectoriesWinAndListsTheKnownOnes) {
    test::TempDir dir("berth-cdi");
    ASSERT_TRUE(mkdir_p(dir / "etc") && mkdir_p(dir / "run"));
    ASSERT_TRUE(write_file(dir / "etc/vendor.json", kJson));
    // The same device "0" in the run directory, with another env: it wins.
    ASSERT_TRUE(write_file(dir / "run/vendor.json",
                           R"({"cdiVersion":"0.5.0","kind":"example.com/gpu","devices":[{"name":"0",)"
                           R"("containerEdits":{"env":["CARD=run"]}}]})"));
    ASSERT_TRUE(write_file(dir / "run/broken.json", R"({"cdiVersion":"9.9.9"})"));
    auto reg = cdi::load_registry({dir / "etc", dir / "run", dir / "missing"});
    ASSERT_EQ(reg.specs.size(), 2u);
    ASSERT_EQ(reg.errors.size(), 1u);
    EXPECT_NE(reg.errors[0].what().find("broken.json': cdiVersion"), std::string::npos)
        << reg.errors[0].what();
    EXPECT_EQ(reg.device_names(), (std::vector<std::string>{"example.com/gpu=0", "example.com/gpu=1"}));
    auto one = reg.resolve({"example.com/gpu=0"});
    ASSERT_TRUE(one) << one.error().what();
    EXPECT_EQ(one->env, (std::vector<std::string>{"CARD=run"}));
    auto all = reg.resolve({"example.com/gpu=all"});
    ASSERT_TRUE(all) << all.error().what();
    EXPECT_EQ(all->device_nodes.size(), 1u);  // "0" from run/ has none, "1" has /dev/card1
    EXPECT_EQ(all->mounts.size(), 1u);        // the spec-level edits of etc/vendor.json, once
    auto unknown = reg.resolve({"example.com/gpu=7"});
    ASSERT_FALSE(unknown);
    EXPECT_NE(unknown.error().what().find("unknown CDI device 'example.com/gpu=7'; known: example.com/gpu=0, "
                                          "example.com/gpu=1"),
              std::string::npos)
        << unknown.error().what();
}

TEST(DeviceEntry, PathsWithPermissionsAndCdiNamesParseAndBadOnesSayWhy) {
    std::string why;
    auto fuse = config::parse_device_entry("/dev/fuse", &why);
    ASSERT_TRUE(fuse);
    EXPECT_FALSE(fuse->cdi);
    EXPECT_EQ(fuse->permissions, "rwm");
    auto kvm = config::parse_device_entry("/dev/kvm:rw", &why);
    ASSERT_TRUE(kvm);
    EXPECT_EQ(kvm->path, "/dev/kvm");
    EXPECT_EQ(kvm->permissions, "rw");
    auto gpu = config::parse_device_entry("nvidia.com/gpu=all", &why);
    ASSERT_TRUE(gpu);
    EXPECT_TRUE(gpu->cdi);
    EXPECT_EQ(gpu->kind, "nvidia.com/gpu");
    EXPECT_EQ(gpu->name, "all");
    EXPECT_FALSE(config::parse_device_entry("/dev/kvm:rx", &why));
    EXPECT_NE(why.find("permissions 'rx'"), std::string::npos) << why;
    EXPECT_FALSE(config::parse_device_entry("/etc/passwd", &why));
    EXPECT_FALSE(config::parse_device_entry("nvidia/gpu=0", &why));
    EXPECT_FALSE(config::parse_device_entry("nvidia.com/gpu", &why));
    EXPECT_NE(why.find("vendor.com/class=name"), std::string::npos) << why;
}

// A small interpreter for the instructions build_device_program() emits: what the kernel would
// decide for (type, major, minor, access).
int run_program(const std::vector<bpf_insn>& p, uint32_t type, uint32_t major, uint32_t minor,
                uint32_t access) {
    uint32_t ctx[3] = {(access << 16) | type, major, minor};
    uint64_t r[11] = {};
    for (size_t pc = 0; pc < p.size(); ++pc) {
        const bpf_insn& i = p[pc];
        switch (i.code) {
            case BPF_LDX | BPF_W | BPF_MEM:
                r[i.dst_reg] = ctx[i.off / 4];
                break;
            case BPF_ALU64 | BPF_AND | BPF_K:
                r[i.dst_reg] &= static_cast<uint64_t>(static_cast<int64_t>(i.imm));
                break;
            case BPF_ALU64 | BPF_RSH | BPF_K:
                r[i.dst_reg] >>= i.imm;
                break;
            case BPF_ALU64 | BPF_MOV | BPF_K:
                r[i.dst_reg] = static_cast<uint64_t>(static_cast<int64_t>(i.imm));
                break;
            case BPF_ALU64 | BPF_MOV | BPF_X:
                r[i.dst_reg] = r[i.src_reg];
                break;
            case BPF_JMP | BPF_JNE | BPF_K:
                if (r[i.dst_reg] != static_cast<uint64_t>(static_cast<int64_t>(i.imm)))
                    pc += static_cast<size_t>(i.off);
                break;
            case BPF_JMP | BPF_EXIT:
                return static_cast<int>(r[0]);
            default:
                ADD_FAILURE() << "unexpected opcode " << int(i.code);
                return -1;
        }
    }
    ADD_FAILURE() << "fell off the end";
    return -1;
}

TEST(DeviceProgram, AllowsTheListedDevicesWithTheirAccessAndNothingElse) {
    using runtime::DeviceRule;
    using runtime::DeviceType;
    std::vector<DeviceRule> rules = runtime::standard_device_rules();
    rules.push_back({DeviceType::Char, 10, 229, "rw"});          // /dev/fuse:rw
    rules.push_back({DeviceType::Block, 8, std::nullopt, "r"});  // any sd*, read
    auto p = runtime::build_device_program(rules);
    constexpr uint32_t C = BPF_DEVCG_DEV_CHAR, B = BPF_DEVCG_DEV_BLOCK;
    constexpr uint32_t R = BPF_DEVCG_ACC_READ, W = BPF_DEVCG_ACC_WRITE, M = BPF_DEVCG_ACC_MKNOD;
    EXPECT_EQ(run_program(p, C, 1, 3, R | W), 1);  // /dev/null
    EXPECT_EQ(run_program(p, C, 1, 3, M), 1);
    EXPECT_EQ(run_program(p, C, 1, 1, R), 0);        // /dev/mem
    EXPECT_EQ(run_program(p, C, 136, 7, R | W), 1);  // /dev/pts/7
    EXPECT_EQ(run_program(p, C, 10, 229, R | W), 1);
    EXPECT_EQ(run_program(p, C, 10, 229, M), 0);  // no 'm' declared
    EXPECT_EQ(run_program(p, B, 10, 229, R), 0);  // a block device with fuse's numbers
    EXPECT_EQ(run_program(p, B, 8, 0, R), 1);
    EXPECT_EQ(run_program(p, B, 8, 16, R | W), 0);
    EXPECT_EQ(run_program(p, B, 7, 0, R), 0);  // loop0
    EXPECT_EQ(runtime::format_device_rule(rules.back()), "b 8:* r");
    // Only the prologue and the final deny for an empty list: everything is refused.
    auto empty = runtime::build_device_program({});
    EXPECT_EQ(empty.size(), 8u);
    EXPECT_EQ(run_program(empty, C, 1, 3, R), 0);
}

}  // namespace
}  // namespace berth
