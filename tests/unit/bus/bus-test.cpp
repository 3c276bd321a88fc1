// berthd's bus layer against a real private dbus-daemon: the daemon core (src/berthd) serving an
// in-memory FakeStorage, driven with busctl, with the berth CLI and with RemoteStorage.
#include <gtest/gtest.h>

#include <regex>
#include <set>

#include "bus-fixture.h"
#include "bus/bus-util.h"
#include "bus/storage.h"

using namespace berth;
using namespace berth::test;

namespace {

std::string fake_exe() { return std::getenv("BERTHD_FAKE"); }
std::string berth_exe() { return std::getenv("BERTH_EXE"); }

class BusTest : public ::testing::Test {
protected:
    void start(PrivateBus::Policy policy = PrivateBus::Policy::Berth) {
        bus_ = std::make_unique<PrivateBus>(policy);
        ASSERT_TRUE(bus_->ok()) << "dbus-daemon did not start: " << bus_->log();
        daemon_ = spawn({fake_exe(), "--bus-address", bus_->address()}, {}, bus_->dir() + "/berthd.log");
        ASSERT_TRUE(wait_for_name(bus_->address(), "org.berth.Storage1", 20000, &daemon_)) << log();
        env_addr_ = std::make_unique<ScopedEnv>("DBUS_SYSTEM_BUS_ADDRESS", bus_->address());
        env_mode_ = std::make_unique<ScopedEnv>("BERTH_STORAGE", "bus");
    }
    void SetUp() override { start(); }
    void TearDown() override {
        daemon_.kill_and_reap();
        env_mode_.reset();
        env_addr_.reset();
        bus_.reset();
    }
    std::string log() const {
        auto r = read_file(bus_->dir() + "/berthd.log");
        return r ? *r : "";
    }
    std::string busctl(const std::string& args) { return "busctl --address=" + bus_->address() + " " + args; }
    std::unique_ptr<bus::Storage> client() {
        auto s = bus::open_remote_storage();
        EXPECT_TRUE(s) << s.error().what();
        return s ? std::move(*s) : nullptr;
    }
    // Imports `content` through a pipe.
    Result<bus::ImageInfo> import(bus::Storage& s, const std::string& content, const std::string& name) {
        int p[2];
        if (::pipe2(p, O_CLOEXEC) < 0) return fail_errno("pipe");
        UniqueFd r(p[0]), w(p[1]);
        std::thread writer([&] {
            (void)!::write(w.get(), content.data(), content.size());
            w.reset();
        });
        std::atomic<bool> cancel{false};
        auto result = s.import_image(r.get(), "", name, {}, cancel);
        writer.join();
        return result;
    }

    std::unique_ptr<PrivateBus> bus_;
    Child daemon_;
    std::unique_ptr<ScopedEnv> env_addr_, env_mode_;
};

std::set<std::string> members_in_xml(const std::string& xml) {
    std::set<std::string> out;
    std::regex re(R"re(<(method|property|signal) name="([A-Za-z]+)")re");
    for (std::sregex_iterator it(xml.begin(), xml.end(), re), end; it != end; ++it) out.insert((*it)[2]);
    return out;
}

}  // namespace

TEST_F(BusTest, IntrospectionMatchesTheDocumentedContract) {
    auto xml = read_file(source_root() + "/dbus/org.berth.Storage1.xml");
    ASSERT_TRUE(xml);
    auto documented = members_in_xml(*xml);
    ASSERT_GT(documented.size(), 30u);
    // What the daemon really exports, from the manager and (after an import) an image object.
    auto s = client();
    auto image = import(*s, "layer-bytes", "demo:1");
    ASSERT_TRUE(image) << image.error().what();
    std::string text;
    for (auto path : {std::string("/org/berth/Storage1"), bus::object_path(bus::kImagePrefix, image->id)}) {
        auto r = run_shell(busctl("introspect --xml-interface org.berth.Storage1 " + path));
        ASSERT_EQ(r.status, 0) << r.err;
        text += r.out;
    }
    auto exported = members_in_xml(text);
    for (auto& m : documented) {
        if (m != "Release" && m != "Remove" && m != "Id" && m != "Type" && m != "Description" &&
            m != "Progress" && m != "BytesRead" && m != "Cancel" && m != "Name" && m != "Image" &&
            m != "Layer" && m != "Ephemeral") {
            EXPECT_TRUE(exported.count(m)) << "documented but not exported: " << m;
        }
    }
    for (auto& m : exported) {
        if (m != "Introspect" && m != "Ping" && m != "GetMachineId" && m != "Get" && m != "GetAll" &&
            m != "Set" && m != "PropertiesChanged" && m != "GetManagedObjects" && m != "InterfacesAdded" &&
            m != "InterfacesRemoved") {
            EXPECT_TRUE(documented.count(m)) << "exported but not documented: " << m;
        }
    }
}

TEST_F(BusTest, ImportTakesAFileDescriptorAndReturnsAJobWhoseResultIsListed) {
    auto s = client();
    ASSERT_EQ(s->mode(), "bus");
    auto image = import(*s, "hello layer", "hello");
    ASSERT_TRUE(image) << image.error().what();
    EXPECT_EQ(image->names, std::vector<std::string>{"hello:latest"});
    EXPECT_EQ(image->size, 11u);
    auto list = s->list_images();
    ASSERT_TRUE(list);
    ASSERT_EQ(list->size(), 1u);
    EXPECT_EQ((*list)[0].id, image->id);
    EXPECT_EQ((*list)[0].config.cmd, std::vector<std::string>{"/bin/sh"});
    // The image object exists with its properties.
    auto r =
        run_shell(busctl("get-property org.berth.Storage1 " + bus::object_path(bus::kImagePrefix, image->id) +
                         " org.berth.Storage1.Image Size"));
    EXPECT_EQ(r.out, "t 11\n") << r.err;
}

TEST_F(BusTest, ListImagesIsAnsweredWhileAnImportIsStillReading) {
    auto s = client();
    ASSERT_TRUE(import(*s, "first", "first"));
    // An import from a pipe whose write end we hold: it cannot finish until we close it.
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    UniqueFd rd(p[0]), wr(p[1]);
    ASSERT_EQ(::write(wr.get(), "partial", 7), 7);
    std::atomic<bool> cancel{false};
    Result<bus::ImageInfo> pending = fail(EINPROGRESS, "not done");
    std::thread importer([&] {
        auto other = bus::open_remote_storage();
        if (other) pending = (*other)->import_image(rd.get(), "", "slow", {}, cancel);
    });
    // The daemon exposes the running job, and keeps answering reads meanwhile.
    bool saw_job = false;
    for (int i = 0; i < 200 && !saw_job; ++i) {
        auto tree = run_shell(busctl("tree --list org.berth.Storage1"));
        saw_job = tree.out.find("/org/berth/Storage1/job/") != std::string::npos;
        if (!saw_job) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_TRUE(saw_job);
    for (int i = 0; i < 5; ++i) {
        auto list = s->list_images();
        ASSERT_TRUE(list) << list.error().what();
        EXPECT_EQ(list->size(), 1u);  // the pending image is not visible yet
    }
    auto r = run_shell(
        busctl("call org.berth.Storage1 /org/berth/Storage1 org.berth.Storage1.Manager ListImages"));
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out.rfind("a(sasttas(asasassss(asttttu))) 1 ", 0), 0u) << r.out;
    wr.reset();  // let the import finish
    importer.join();
    ASSERT_TRUE(pending) << pending.error().what();
    EXPECT_EQ(s->list_images()->size(), 2u);
}

TEST_F(BusTest, ErrorsKeepTheirErrnoAndMessageAcrossTheBus) {
    auto s = client();
    auto missing = s->get_image("nosuch:tag");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code, ENOENT);
    EXPECT_NE(missing.error().what().find("no image 'nosuch:tag'"), std::string::npos)
        << missing.error().what();
    // A failed import job reports the store's message, naming the offending entry.
    auto bad = import(*s, "BAD archive", "bad");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, EBADMSG);
    EXPECT_NE(bad.error().what().find("'../etc/passwd'"), std::string::npos) << bad.error().what();
    EXPECT_EQ(s->list_images()->size(), 0u);
}

TEST_F(BusTest, InvalidInputIsRejectedBeforeAnyWork) {
    auto r = run_shell(
        busctl("call org.berth.Storage1 /org/berth/Storage1 org.berth.Storage1.Manager RemoveImage s "
               "'../../etc'"));
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.err.find("invalid image name"), std::string::npos) << r.err;
    r =
        run_shell(busctl("call org.berth.Storage1 /org/berth/Storage1 org.berth.Storage1.Manager TagImage ss "
                         "abcd 'bad name'"));
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.err.find("invalid image name"), std::string::npos) << r.err;
    r = run_shell(
        busctl("call org.berth.Storage1 /org/berth/Storage1 org.berth.Storage1.Manager PrepareContainer ssbs "
               "'a/b' img false recreate"));
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.err.find("invalid container name"), std::string::npos) << r.err;
}

TEST_F(BusTest, ContainersAndVolumesAreObjectsAndMethods) {
    auto s = client();
    auto image = import(*s, "base", "base");
    ASSERT_TRUE(image);
    auto prepared = s->prepare_container("web", "base", true);
    ASSERT_TRUE(prepared) << prepared.error().what();
    EXPECT_EQ(prepared->rootfs.kind, store::MountSpec::Kind::Overlay);
    EXPECT_EQ(prepared->rootfs.lowerdirs.size(), 2u);
    EXPECT_EQ(prepared->rootfs.upperdir, "/fake/containers/web/upper");
    EXPECT_EQ(prepared->config.cmd, std::vector<std::string>{"/bin/sh"});
    auto r =
        run_shell(busctl("get-property org.berth.Storage1 /org/berth/Storage1/container/web "
                         "org.berth.Storage1.Container Ephemeral"));
    EXPECT_EQ(r.out, "b true\n") << r.err;
    ASSERT_TRUE(s->create_volume("data"));
    EXPECT_EQ(s->list_volumes()->size(), 1u);
    EXPECT_TRUE(s->remove_volume("data"));
    EXPECT_TRUE(s->remove_container("web"));
    EXPECT_EQ(s->list_containers()->size(), 0u);
    auto gc = s->garbage_collect();
    ASSERT_TRUE(gc);
    EXPECT_EQ(gc->bytes_freed, 4096u);
    auto pool = s->pool_status();
    ASSERT_TRUE(pool);
    EXPECT_EQ(pool->backend, "fake");
    EXPECT_EQ(pool->size, 1u << 20);
}

TEST_F(BusTest, TheCliTalksToBerthdAndPrintsJson) {
    auto r = run_shell("echo -n cli-bytes | DBUS_SYSTEM_BUS_ADDRESS=" + bus_->address() + " " + berth_exe() +
                       " image import - --name cli:v1 --json --verbose");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.err.find("using berthd on the system bus"), std::string::npos) << r.err;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["names"][0], "cli:v1");
    r = run_shell("DBUS_SYSTEM_BUS_ADDRESS=" + bus_->address() + " " + berth_exe() + " image list --json");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out).size(), 1u);
    r = run_shell("DBUS_SYSTEM_BUS_ADDRESS=" + bus_->address() + " " + berth_exe() + " image rm nope:1");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("berth image rm: 'nope:1': no image 'nope:1'"), std::string::npos) << r.err;
}

// issue #15: validate asks berthd (when it runs) for the image, and warns when it is missing.
TEST_F(BusTest, ValidateWarnsAboutAnImageBerthdDoesNotHaveYet) {
    const std::string env = "DBUS_SYSTEM_BUS_ADDRESS=" + bus_->address() + " ";
    ASSERT_EQ(run_shell("echo -n v-bytes | " + env + berth_exe() + " image import - --name have:1").status,
              0);
    std::string missing = bus_->dir() + "/w.toml", present = bus_->dir() + "/p.toml";
    ASSERT_TRUE(write_file(missing, "[container]\nimage = \"nope:1\"\n"));
    ASSERT_TRUE(write_file(present, "[container]\nimage = \"have:1\"\n"));
    auto r = run_shell(env + berth_exe() + " validate " + missing + " " + present);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(
        r.err,
        "w: warning: image 'nope:1' is not in the store; import it first: berth image import FILE --name "
        "nope:1 (berth run fails until it is)\n");
}

TEST_F(BusTest, SigtermStopsTheDaemonCleanly) {
    int status = daemon_.stop(SIGTERM);
    ASSERT_NE(status, -1) << "berthd did not exit on SIGTERM";
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

// The bus policy (berth's file) and the daemon both refuse mutations from non-root callers.
class AccessTest : public BusTest {
protected:
    void SetUp() override {}
    CommandResult as_nobody(const std::string& args) {
        // busctl's debug log shows the error's real name and message.
        return run_shell("SYSTEMD_LOG_LEVEL=debug setpriv --reuid=65534 --regid=65534 --clear-groups " +
                         busctl(args));
    }
    CommandResult berth_as_nobody(const std::string& args) {
        return run_shell("DBUS_SYSTEM_BUS_ADDRESS=" + bus_->address() +
                         " BERTH_STORAGE=bus setpriv --reuid=65534 "
                         "--regid=65534 --clear-groups " +
                         berth_exe() + " " + args);
    }
    void expect_reads_allowed_and_mutations_denied() {
        auto r =
            as_nobody("call org.berth.Storage1 /org/berth/Storage1 org.berth.Storage1.Manager ListImages");
        EXPECT_EQ(r.status, 0) << r.err;
        r = as_nobody(
            "get-property org.berth.Storage1 /org/berth/Storage1 org.berth.Storage1.Manager Backend");
        EXPECT_EQ(r.out, "s \"fake\"\n") << r.err;
        EXPECT_EQ(berth_as_nobody("image list --json").status, 0);
        for (std::string call :
             {"RemoveImage s x", "TagImage ss x y:1", "GarbageCollect", "CreateVolume s v",
              "PrepareContainer ssbs c x false recreate", "RemoveVolume s v", "CommitContainer ss c i:1"}) {
            r = as_nobody("call org.berth.Storage1 /org/berth/Storage1 org.berth.Storage1.Manager " + call);
            EXPECT_NE(r.status, 0) << call;
            EXPECT_NE(r.err.find("error-name=org.freedesktop.DBus.Error.AccessDenied"), std::string::npos)
                << call << ": " << r.err;
        }
        // ImportImage takes an fd (busctl cannot send one): through the CLI.
        r = berth_as_nobody("image import /dev/null --name n:1");
        EXPECT_EQ(r.status, 1);
        EXPECT_NE(r.err.find("Permission denied"), std::string::npos) << r.err;
        // The same mutation as root passes both checks.
        auto ok =
            run_shell(busctl("call org.berth.Storage1 /org/berth/Storage1 org.berth.Storage1.Manager "
                             "GarbageCollect"));
        EXPECT_EQ(ok.status, 0) << ok.err;
    }
};

TEST_F(AccessTest, BerthsPolicyFileLetsOthersReadButNotWrite) {
    BERTH_REQUIRE_ROOT();
    start(PrivateBus::Policy::Berth);
    expect_reads_allowed_and_mutations_denied();
}

TEST_F(AccessTest, TheDaemonItselfDeniesMutationsWhenThePolicyAllowsEverything) {
    BERTH_REQUIRE_ROOT();
    start(PrivateBus::Policy::AllowAll);
    expect_reads_allowed_and_mutations_denied();
    // The denial came from berthd (its message), not from the bus.
    auto r =
        as_nobody("call org.berth.Storage1 /org/berth/Storage1 org.berth.Storage1.Manager GarbageCollect");
    EXPECT_NE(r.err.find("error-message=Only root may call GarbageCollect (caller uid 65534)"),
              std::string::npos)
        << r.err;
}
