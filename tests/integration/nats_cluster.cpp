#include "nats_cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <stdexcept>

#include <gtest/gtest.h>

namespace pgseed::test {

namespace {
constexpr const char* kServer = "/usr/sbin/nats-server";
constexpr auto kStartLimit = std::chrono::seconds(30);

// A port the kernel gave a socket bound to port 0 on loopback, released at once.
int free_port() {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  close(s);
  return ntohs(a.sin_port);
}
}  // namespace

NatsCluster::NatsCluster(int nodes) : nodes_(nodes) {
  char tmpl[] = "/tmp/pgseed-nats-XXXXXX";
  if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  for (auto& n : nodes_) {
    n.client_port = free_port();
    n.cluster_port = free_port();
  }
  for (int i = 0; i < nodes; ++i) start_node(i);
  for (int i = 0; i < nodes; ++i)
    if (!wait_for_line(i, "Server is ready", 0)) ADD_FAILURE() << "nats-server node " << i << " did not start";
  if (nodes > 1) {
    // JetStream takes streams once the cluster has elected its metadata leader.
    bool elected = false;
    for (int i = 0; i < nodes && !elected; ++i) elected = wait_for_line(i, "metadata leader", 0);
    if (!elected) ADD_FAILURE() << "the NATS cluster elected no JetStream metadata leader";
  }
}

NatsCluster::~NatsCluster() {
  for (int i = 0; i < int(nodes_.size()); ++i) stop_node(i);
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::string NatsCluster::urls() const {
  std::string out;
  for (const auto& n : nodes_) out += (out.empty() ? "" : ",") + std::string("nats://127.0.0.1:") + std::to_string(n.client_port);
  return out;
}

void NatsCluster::start_node(int i) {
  Node& n = nodes_[i];
  std::string name = "n" + std::to_string(i + 1);
  std::vector<std::string> args = {kServer, "-a", "127.0.0.1", "-p", std::to_string(n.client_port), "-js",
                                   "-sd", dir_ + "/" + name, "--server_name", name};
  if (nodes_.size() > 1) {
    std::string routes;
    for (int j = 0; j < int(nodes_.size()); ++j)
      if (j != i) routes += (routes.empty() ? "" : ",") + std::string("nats://127.0.0.1:") + std::to_string(nodes_[j].cluster_port);
    args.insert(args.end(), {"--cluster_name", "pgseedtest", "--cluster",
                             "nats://127.0.0.1:" + std::to_string(n.cluster_port), "--routes", routes});
  }
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(kServer, argv.data());
    _exit(127);
  }
  close(fds[1]);
  n.pid = pid;
  n.out_fd = fds[0];
  if (n.reader.joinable()) n.reader.join();
  n.reader = std::thread([this, i, fd = fds[0]] {
    std::string buf;
    char chunk[4096];
    for (;;) {
      ssize_t got = read(fd, chunk, sizeof chunk);
      if (got <= 0) break;
      buf.append(chunk, size_t(got));
      size_t nl;
      while ((nl = buf.find('\n')) != std::string::npos) {
        {
          std::lock_guard<std::mutex> l(mu_);
          nodes_[i].lines.push_back(buf.substr(0, nl));
        }
        cv_.notify_all();
        buf.erase(0, nl + 1);
      }
    }
    {
      std::lock_guard<std::mutex> l(mu_);
      nodes_[i].lines.push_back("<exited>");
    }
    cv_.notify_all();
  });
}

bool NatsCluster::wait_for_line(int i, const std::string& text, size_t from) {
  std::unique_lock<std::mutex> l(mu_);
  size_t seen = from;
  return cv_.wait_for(l, kStartLimit, [&] {
    auto& lines = nodes_[i].lines;
    for (; seen < lines.size(); ++seen) {
      if (lines[seen].find(text) != std::string::npos) return true;
      if (lines[seen] == "<exited>") throw std::runtime_error("nats-server node exited: " + (seen > 0 ? lines[seen - 1] : ""));
    }
    return false;
  });
}

void NatsCluster::stop_node(int i) {
  Node& n = nodes_[i];
  if (n.pid > 0) {
    kill(n.pid, SIGKILL);
    waitpid(n.pid, nullptr, 0);
    n.pid = -1;
  }
  if (n.reader.joinable()) n.reader.join();
  if (n.out_fd >= 0) close(n.out_fd);
  n.out_fd = -1;
}

void NatsCluster::kill_node(int i) { stop_node(i); }

void NatsCluster::restart_node(int i) {
  size_t from;
  {
    std::lock_guard<std::mutex> l(mu_);
    from = nodes_[i].lines.size();
  }
  start_node(i);
  if (!wait_for_line(i, "Server is ready", from)) ADD_FAILURE() << "nats-server node " << i << " did not restart";
}

}  // namespace pgseed::test
