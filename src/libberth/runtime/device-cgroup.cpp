#include "runtime/device-cgroup.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

namespace berth::runtime {

namespace {

// Instruction encoders (the kernel's BPF_* macros live in its private filter.h).
bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
    bpf_insn i{};
    i.code = code;
    i.dst_reg = dst & 0xf;
    i.src_reg = src & 0xf;
    i.off = off;
    i.imm = imm;
    return i;
}
bpf_insn load_ctx_word(uint8_t dst, int16_t off) {
    return insn(BPF_LDX | BPF_W | BPF_MEM, dst, BPF_REG_1, off, 0);
}
bpf_insn alu_imm(uint8_t op, uint8_t dst, int32_t imm) {
    return insn(BPF_ALU64 | op | BPF_K, dst, 0, 0, imm);
}
bpf_insn mov_reg(uint8_t dst, uint8_t src) { return insn(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0); }
bpf_insn jne_imm(uint8_t dst, int32_t imm, int16_t off) {
    return insn(BPF_JMP | BPF_JNE | BPF_K, dst, 0, off, imm);
}
bpf_insn exit_insn() { return insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }

int32_t access_bits(const std::string& access) {
    int32_t bits = 0;
    if (access.find('m') != std::string::npos) bits |= BPF_DEVCG_ACC_MKNOD;
    if (access.find('r') != std::string::npos) bits |= BPF_DEVCG_ACC_READ;
    if (access.find('w') != std::string::npos) bits |= BPF_DEVCG_ACC_WRITE;
    return bits;
}

constexpr int32_t kAllAccess = BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE;

// Registers: r2 = device type, r3 = access requested, r4 = major, r5 = minor; r1 is scratch once
// they are loaded.
std::vector<bpf_insn> rule_block(const DeviceRule& rule) {
    std::vector<bpf_insn> block;
    // Each jump is patched to land just after the block ("next rule").
    if (rule.type != DeviceType::All)
        block.push_back(
            jne_imm(BPF_REG_2, rule.type == DeviceType::Char ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK, 0));
    int32_t allowed = access_bits(rule.access);
    if (allowed != kAllAccess) {
        block.push_back(mov_reg(BPF_REG_1, BPF_REG_3));
        block.push_back(alu_imm(BPF_AND, BPF_REG_1, ~allowed));
        block.push_back(jne_imm(BPF_REG_1, 0, 0));
    }
    if (rule.major) block.push_back(jne_imm(BPF_REG_4, static_cast<int32_t>(*rule.major), 0));
    if (rule.minor) block.push_back(jne_imm(BPF_REG_5, static_cast<int32_t>(*rule.minor), 0));
    block.push_back(alu_imm(BPF_MOV, BPF_REG_0, 1));
    block.push_back(exit_insn());
    for (size_t i = 0; i < block.size(); ++i)
        if (block[i].code == (BPF_JMP | BPF_JNE | BPF_K))
            block[i].off = static_cast<int16_t>(block.size() - i - 1);
    return block;
}

long bpf(int cmd, bpf_attr* attr) { return ::syscall(SYS_bpf, cmd, attr, sizeof *attr); }

}  // namespace

const std::vector<DeviceRule>& standard_device_rules() {
    static const std::vector<DeviceRule> rules = [] {
        std::vector<DeviceRule> r;
        for (uint32_t minor : {3u, 5u, 7u, 8u, 9u})
            r.push_back({DeviceType::Char, 1, minor, "rwm"});  // null..urandom
        for (uint32_t minor : {0u, 1u, 2u})
            r.push_back({DeviceType::Char, 5, minor, "rwm"});  // tty console ptmx
        // /dev/pts/N: UNIX98 pty slaves, majors 136..143.
        for (uint32_t major = 136; major <= 143; ++major)
            r.push_back({DeviceType::Char, major, std::nullopt, "rwm"});
        return r;
    }();
    return rules;
}

std::string format_device_rule(const DeviceRule& rule) {
    auto number = [](const std::optional<uint32_t>& n) { return n ? std::to_string(*n) : std::string("*"); };
    return fmt::format("{} {}:{} {}", static_cast<char>(rule.type), number(rule.major), number(rule.minor),
                       rule.access);
}

std::vector<bpf_insn> build_device_program(const std::vector<DeviceRule>& rules) {
    std::vector<bpf_insn> p = {
        load_ctx_word(BPF_REG_2, offsetof(bpf_cgroup_dev_ctx, access_type)),
        alu_imm(BPF_AND, BPF_REG_2, 0xffff),
        load_ctx_word(BPF_REG_3, offsetof(bpf_cgroup_dev_ctx, access_type)),
        alu_imm(BPF_RSH, BPF_REG_3, 16),
        load_ctx_word(BPF_REG_4, offsetof(bpf_cgroup_dev_ctx, major)),
        load_ctx_word(BPF_REG_5, offsetof(bpf_cgroup_dev_ctx, minor)),
    };
    for (const auto& rule : rules) {
        auto block = rule_block(rule);
        p.insert(p.end(), block.begin(), block.end());
    }
    p.push_back(alu_imm(BPF_MOV, BPF_REG_0, 0));
    p.push_back(exit_insn());
    return p;
}

Result<> attach_device_program(int cgroup_fd, const std::vector<bpf_insn>& program) {
    static const char license[] = "GPL";
    bpf_attr load{};
    load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    load.insns = reinterpret_cast<uint64_t>(program.data());
    load.insn_cnt = static_cast<uint32_t>(program.size());
    load.license = reinterpret_cast<uint64_t>(license);
    UniqueFd prog(static_cast<int>(bpf(BPF_PROG_LOAD, &load)));
    if (!prog) return fail_errno("load the device cgroup program ({} instructions)", program.size());
    bpf_attr attach{};
    attach.target_fd = static_cast<uint32_t>(cgroup_fd);
    attach.attach_bpf_fd = static_cast<uint32_t>(prog.get());
    attach.attach_type = BPF_CGROUP_DEVICE;
    attach.attach_flags = BPF_F_ALLOW_MULTI;
    if (bpf(BPF_PROG_ATTACH, &attach) < 0) return fail_errno("attach the device cgroup program");
    return {};
}

}  // namespace berth::runtime
