// A real nats-server JetStream cluster for a test: N nodes on free loopback ports, each with
// its own store directory under a temp dir, stopped (and the directory removed) on
// destruction. Start-up waits on the servers' own log lines (ready; with several nodes, a
// JetStream metadata leader elected), read from their output as it comes.
#pragma once

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace pgseed::test {

class NatsCluster {
 public:
  // Starts `nodes` servers (1 or more) and waits until JetStream can take a stream.
  explicit NatsCluster(int nodes);
  ~NatsCluster();
  NatsCluster(const NatsCluster&) = delete;
  NatsCluster& operator=(const NatsCluster&) = delete;

  // "nats://127.0.0.1:P1,nats://127.0.0.1:P2,..." (what --publish takes).
  std::string urls() const;
  // kill -9 of node i, and its restart on the same ports and store (waits until it is
  // ready; JetStream may still be catching up then).
  void kill_node(int i);
  void restart_node(int i);

 private:
  struct Node {
    int client_port = 0;
    int cluster_port = 0;
    int pid = -1;
    int out_fd = -1;
    std::thread reader;
    std::vector<std::string> lines;
  };
  void start_node(int i);
  // Waits until node i logged a line containing `text` after line `from` (false: it exited
  // or did not within the limit).
  bool wait_for_line(int i, const std::string& text, size_t from);
  void stop_node(int i);

  std::string dir_;
  std::vector<Node> nodes_;
  std::mutex mu_;
  std::condition_variable cv_;
};

}  // namespace pgseed::test
