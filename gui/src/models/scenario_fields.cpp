// Field descriptors of a Scenario. Paths and enum spellings are core's (validate.cpp, json.cpp).
#include "hpsim/gui/models/scenario_fields.h"

#include <array>

namespace hpsim::gui {
namespace {

using core::Scenario;

// Builders keep the table below one line per field.
FieldSpec spec(QString section, QString path, QString label, QString unit, QString help, FieldKind kind) {
  return {std::move(section), std::move(path), std::move(label), std::move(unit), std::move(help), kind, {}, {}, {}};
}

template <typename Get>
FieldSpec text_at(QString section, QString path, QString label, Get ref, QString help = {}) {
  FieldSpec f = spec(std::move(section), std::move(path), std::move(label), {}, std::move(help), FieldKind::kText);
  f.get = [ref](const Scenario& s) { return QVariant(QString::fromStdString(ref(s))); };
  f.set = [ref](Scenario& s, const QVariant& v) { ref(s) = v.toString().toStdString(); };
  return f;
}

FieldSpec text(QString section, QString path, QString label, std::string Scenario::*outer, QString help = {}) {
  return text_at(
      std::move(section), std::move(path), std::move(label), [outer](auto& s) -> auto& { return s.*outer; },
      std::move(help));
}

template <typename Get>
FieldSpec integer(QString section, QString path, QString label, QString unit, Get ref, QString help = {}) {
  FieldSpec f = spec(std::move(section), std::move(path), std::move(label), std::move(unit), std::move(help),
                     FieldKind::kInteger);
  f.get = [ref](const Scenario& s) { return QVariant(static_cast<qlonglong>(ref(s))); };
  f.set = [ref](Scenario& s, const QVariant& v) { ref(s) = static_cast<std::int64_t>(v.toLongLong()); };
  return f;
}

template <typename Get>
FieldSpec real(QString section, QString path, QString label, QString unit, Get ref, QString help = {}) {
  FieldSpec f =
      spec(std::move(section), std::move(path), std::move(label), std::move(unit), std::move(help), FieldKind::kReal);
  f.get = [ref](const Scenario& s) { return QVariant(ref(s)); };
  f.set = [ref](Scenario& s, const QVariant& v) { ref(s) = v.toDouble(); };
  return f;
}

template <typename Enum, std::size_t N, typename Get>
FieldSpec choice(QString section, QString path, QString label, const std::array<Enum, N>& values, Get ref,
                 QString help = {}) {
  FieldSpec f = spec(std::move(section), std::move(path), std::move(label), {}, std::move(help), FieldKind::kChoice);
  for (auto v : values) f.choices << QString::fromLatin1(core::to_string(v));
  f.get = [ref](const Scenario& s) { return QVariant(QString::fromLatin1(core::to_string(ref(s)))); };
  f.set = [ref, values](Scenario& s, const QVariant& v) {
    const QString name = v.toString();
    for (auto e : values) {
      if (name == QLatin1String(core::to_string(e))) ref(s) = e;
    }
  };
  return f;
}

constexpr std::array kStrategies = {core::Strategy::kEp, core::Strategy::kHp};
constexpr std::array kRoutings = {core::Routing::kUniform, core::Routing::kZipf, core::Routing::kTrace};
constexpr std::array kOwnerships = {core::Ownership::kContiguous, core::Ownership::kStrided};
constexpr std::array kModes = {core::WorkloadMode::kExpectation, core::WorkloadMode::kSampled};
constexpr std::array kTopologies = {core::TopologyKind::kFatTree, core::TopologyKind::kRailOptimized,
                                    core::TopologyKind::kCustom};

std::vector<FieldSpec> make_fields() {
  const QString S = QStringLiteral("Scenario"), M = QStringLiteral("Model"), P = QStringLiteral("Parallelism"),
                C = QStringLiteral("Cluster"), W = QStringLiteral("Workload"), T = QStringLiteral("Training");
  std::vector<FieldSpec> f;
  f.push_back(text(S, "name", "Name", &Scenario::name));
  f.push_back(text(S, "description", "Description", &Scenario::description));

  f.push_back(text_at(
      M, "model.name", "Model name", [](auto& s) -> auto& { return s.model.name; }));
  f.push_back(integer(
      M, "model.d_model", "Model width (d)", "", [](auto& s) -> auto& { return s.model.d_model; }));
  f.push_back(integer(
      M, "model.num_heads", "Heads (H)", "", [](auto& s) -> auto& { return s.model.num_heads; },
      "HP sub-tokens per token"));
  f.push_back(integer(
      M, "model.head_dim", "Head width (h)", "", [](auto& s) -> auto& { return s.model.head_dim; }));
  f.push_back(integer(
      M, "model.num_experts", "Experts (E)", "", [](auto& s) -> auto& { return s.model.num_experts; },
      "per head for HP, in total for EP"));
  f.push_back(integer(
      M, "model.top_k", "Top-k (k)", "", [](auto& s) -> auto& { return s.model.top_k; },
      "active experts per token (per head for HP)"));
  f.push_back(integer(
      M, "model.expert_hidden", "Expert width (f)", "", [](auto& s) -> auto& { return s.model.expert_hidden; }));
  f.push_back(integer(
      M, "model.num_layers", "Layers", "", [](auto& s) -> auto& { return s.model.num_layers; }));
  f.push_back(integer(
      M, "model.num_dense_layers", "Dense layers", "", [](auto& s) -> auto& { return s.model.num_dense_layers; },
      "leading layers with a dense FFN instead of MoE"));
  f.push_back(integer(
      M, "model.dense_hidden", "Dense FFN width", "", [](auto& s) -> auto& { return s.model.dense_hidden; }));
  f.push_back(integer(
      M, "model.seq_len", "Sequence length (T)", "tokens", [](auto& s) -> auto& { return s.model.seq_len; }));
  f.push_back(integer(
      M, "model.vocab_size", "Vocabulary", "", [](auto& s) -> auto& { return s.model.vocab_size; }));
  f.push_back(integer(
      M, "model.bytes_per_element", "Bytes per element (s)", "bytes",
      [](auto& s) -> auto& { return s.model.bytes_per_element; }, "bf16 = 2"));

  f.push_back(choice(
      P, "parallel.strategy", "Strategy", kStrategies, [](auto& s) -> auto& { return s.parallel.strategy; },
      "what the CLI runs; the workbench always compares both"));
  f.push_back(integer(
      P, "parallel.num_ranks", "Ranks (W)", "GPUs", [](auto& s) -> auto& { return s.parallel.num_ranks; },
      "ranks in the EP/HP group"));

  f.push_back(text_at(
      C, "cluster.name", "Cluster name", [](auto& s) -> auto& { return s.cluster.name; }));
  f.push_back(integer(
      C, "cluster.num_nodes", "Nodes", "", [](auto& s) -> auto& { return s.cluster.num_nodes; }));
  f.push_back(integer(
      C, "cluster.gpus_per_node", "GPUs per node", "", [](auto& s) -> auto& { return s.cluster.gpus_per_node; }));
  f.push_back(text_at(
      C, "cluster.gpu.name", "GPU", [](auto& s) -> auto& { return s.cluster.gpu.name; }));
  f.push_back(real(
      C, "cluster.gpu.memory_gb", "GPU memory", "GB", [](auto& s) -> auto& { return s.cluster.gpu.memory_gb; }));
  f.push_back(real(
      C, "cluster.intra_node.bandwidth_gbps", "Intra-node bandwidth", "GB/s",
      [](auto& s) -> auto& { return s.cluster.intra_node.bandwidth_gbps; }, "per GPU, per direction (NVLink)"));
  f.push_back(real(
      C, "cluster.intra_node.latency_us", "Intra-node latency", "µs",
      [](auto& s) -> auto& { return s.cluster.intra_node.latency_us; }));
  f.push_back(real(
      C, "cluster.inter_node.bandwidth_gbps", "Inter-node bandwidth", "GB/s",
      [](auto& s) -> auto& { return s.cluster.inter_node.bandwidth_gbps; }, "per GPU, per direction (NIC)"));
  f.push_back(real(
      C, "cluster.inter_node.latency_us", "Inter-node latency", "µs",
      [](auto& s) -> auto& { return s.cluster.inter_node.latency_us; }));
  f.push_back(choice(
      C, "cluster.topology", "Topology", kTopologies, [](auto& s) -> auto& { return s.cluster.topology; }));
  f.push_back(integer(
      C, "cluster.nodes_per_leaf", "Nodes per leaf switch", "",
      [](auto& s) -> auto& { return s.cluster.nodes_per_leaf; }));
  f.push_back(real(
      C, "cluster.oversubscription", "Oversubscription", "",
      [](auto& s) -> auto& { return s.cluster.oversubscription; }, "leaf uplinks, >= 1"));
  f.push_back(text_at(
      C, "cluster.topology_file", "Topology file", [](auto& s) -> auto& { return s.cluster.topology_file; },
      "custom topology only"));

  f.push_back(integer(
      W, "workload.tokens_per_rank", "Tokens per rank (n)", "tokens",
      [](auto& s) -> auto& { return s.workload.tokens_per_rank; }, "per micro-batch"));
  f.push_back(choice(
      W, "workload.routing", "Routing", kRoutings, [](auto& s) -> auto& { return s.workload.routing; }));
  f.push_back(real(
      W, "workload.zipf_skew", "Zipf skew", "", [](auto& s) -> auto& { return s.workload.zipf_skew; },
      "expert i drawn with weight 1/(i+1)^skew"));
  f.push_back(choice(
      W, "workload.ownership", "Expert ownership", kOwnerships, [](auto& s) -> auto& { return s.workload.ownership; }));
  f.push_back(choice(
      W, "workload.mode", "Counts", kModes, [](auto& s) -> auto& { return s.workload.mode; },
      "expected counts or one seeded sample"));
  {
    FieldSpec seed = spec(W, "workload.seed", "Seed", {}, {}, FieldKind::kUnsigned);
    seed.get = [](const Scenario& s) { return QVariant(static_cast<qulonglong>(s.workload.seed)); };
    seed.set = [](Scenario& s, const QVariant& v) { s.workload.seed = v.toULongLong(); };
    f.push_back(std::move(seed));
  }
  f.push_back(text_at(
      W, "workload.trace_file", "Routing trace file", [](auto& s) -> auto& { return s.workload.trace_file; },
      "routing = trace only"));

  f.push_back(integer(
      T, "training.micro_batches", "Micro-batches", "per step",
      [](auto& s) -> auto& { return s.training.micro_batches; }));
  f.push_back(integer(
      T, "training.global_batch_tokens", "Global batch", "tokens",
      [](auto& s) -> auto& { return s.training.global_batch_tokens; }));
  f.push_back(real(
      T, "training.token_budget", "Token budget", "tokens", [](auto& s) -> auto& { return s.training.token_budget; }));
  f.push_back(integer(
      T, "training.weight_bytes", "Weight bytes", "per parameter",
      [](auto& s) -> auto& { return s.training.weight_bytes; }));
  f.push_back(integer(
      T, "training.grad_bytes", "Gradient bytes", "per parameter",
      [](auto& s) -> auto& { return s.training.grad_bytes; }));
  f.push_back(integer(
      T, "training.optimizer_bytes", "Optimizer bytes", "per parameter",
      [](auto& s) -> auto& { return s.training.optimizer_bytes; }, "Adam, fp32 master + m + v = 12"));
  return f;
}

QString quoted(const QString& text) { return QLatin1Char('"') + text + QLatin1Char('"'); }

}  // namespace

const std::vector<FieldSpec>& scenario_fields() {
  static const std::vector<FieldSpec> fields = make_fields();
  return fields;
}

QStringList scenario_sections() {
  QStringList out;
  for (const auto& f : scenario_fields()) {
    if (!out.contains(f.section)) out << f.section;
  }
  return out;
}

int find_field(const QString& path) {
  const auto& fields = scenario_fields();
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (fields[i].path == path) return static_cast<int>(i);
  }
  return -1;
}

QVariant parse_field_text(const FieldSpec& field, const QString& text, QString* rule) {
  const QString t = text.trimmed();
  bool ok = false;
  switch (field.kind) {
    case FieldKind::kText:
      return QVariant(text);
    case FieldKind::kInteger: {
      const qlonglong v = t.toLongLong(&ok);
      if (ok) return QVariant(v);
      // Accept "1e3"-style integers, as the JSON reader accepts 1000.0.
      const double d = t.toDouble(&ok);
      if (ok && d == static_cast<double>(static_cast<qlonglong>(d))) return QVariant(static_cast<qlonglong>(d));
      if (rule) *rule = QStringLiteral("expected an integer, got ") + quoted(text);
      return {};
    }
    case FieldKind::kUnsigned: {
      const qulonglong v = t.toULongLong(&ok);
      if (ok) return QVariant(v);
      if (rule) *rule = QStringLiteral("expected a non-negative integer, got ") + quoted(text);
      return {};
    }
    case FieldKind::kReal: {
      const double v = t.toDouble(&ok);
      if (ok) return QVariant(v);
      if (rule) *rule = QStringLiteral("expected a number, got ") + quoted(text);
      return {};
    }
    case FieldKind::kChoice: {
      if (field.choices.contains(t)) return QVariant(t);
      if (rule) {
        // The JSON reader's wording: "a", "b" or "c".
        QString list;
        for (int i = 0; i < field.choices.size(); ++i) {
          if (i > 0) list += (i + 1 == field.choices.size()) ? QStringLiteral(" or ") : QStringLiteral(", ");
          list += quoted(field.choices[i]);
        }
        *rule = QStringLiteral("expected one of ") + list + QStringLiteral(", got ") + quoted(text);
      }
      return {};
    }
  }
  return {};
}

QString field_text(const FieldSpec& field, const QVariant& value) {
  switch (field.kind) {
    case FieldKind::kInteger:
      return QString::number(value.toLongLong());
    case FieldKind::kUnsigned:
      return QString::number(value.toULongLong());
    case FieldKind::kReal:
      return QString::number(value.toDouble(), 'g', 12);
    case FieldKind::kText:
    case FieldKind::kChoice:
      return value.toString();
  }
  return value.toString();
}

}  // namespace hpsim::gui
