#include "hpsim/gui/models/sweep.h"

#include <cmath>

#include <QtConcurrent/QtConcurrentRun>

#include "hpsim/gui/models/format.h"

namespace hpsim::gui {
namespace {

bool isWhole(double v) { return std::isfinite(v) && v == std::floor(v); }

SweepSide side(const EngineResult& result, const char* name) {
  SweepSide out;
  const auto* s = result.strategy(name);
  if (!s) return out;
  out.ok = true;
  out.layer_us = s->layer_total_us;
  out.peak_bytes = s->memory.max_peak();
  if (const auto* m = result.metrics_of(name)) {
    out.compute_us = m->compute_us;
    out.comm_us = m->comm_us;
    out.dispatch_max_bytes = m->dispatch_sent_max;
  }
  return out;
}

}  // namespace

QString sweepParameterName(SweepParameter p) {
  switch (p) {
    case SweepParameter::kTopK:
      return QObject::tr("Top-k (k)");
    case SweepParameter::kGranularity:
      return QObject::tr("Granularity (E×g, k×g, f/g)");
    case SweepParameter::kSkew:
      return QObject::tr("Routing skew (Zipf)");
    case SweepParameter::kRanks:
      return QObject::tr("Ranks (W)");
    case SweepParameter::kTokens:
      return QObject::tr("Tokens per rank (n)");
  }
  return {};
}

QString sweepParameterSymbol(SweepParameter p) {
  switch (p) {
    case SweepParameter::kTopK:
      return QStringLiteral("k");
    case SweepParameter::kGranularity:
      return QStringLiteral("g");
    case SweepParameter::kSkew:
      return QStringLiteral("skew");
    case SweepParameter::kRanks:
      return QStringLiteral("W");
    case SweepParameter::kTokens:
      return QStringLiteral("n");
  }
  return {};
}

std::vector<SweepParameter> allSweepParameters() {
  return {SweepParameter::kTopK, SweepParameter::kGranularity, SweepParameter::kSkew, SweepParameter::kRanks,
          SweepParameter::kTokens};
}

std::vector<double> SweepSpec::values(QString* error) const {
  auto fail = [&](const QString& message) {
    if (error) *error = message;
    return std::vector<double>{};
  };
  if (!std::isfinite(from) || !std::isfinite(to) || !std::isfinite(step))
    return fail(QObject::tr("range: not a number"));
  if (to < from) return fail(QObject::tr("range: 'to' (%1) must be >= 'from' (%2)").arg(to).arg(from));
  if (geometric && (from <= 0 || step <= 1)) {
    return fail(QObject::tr("range: a geometric sweep needs from > 0 and a factor > 1"));
  }
  if (!geometric && step <= 0) return fail(QObject::tr("range: step must be > 0"));
  std::vector<double> out;
  // Tolerance so that 0.1-steps reach their end point.
  const double eps = 1e-9 * std::max(1.0, std::abs(to));
  for (double v = from; v <= to + eps; v = geometric ? v * step : from + step * static_cast<double>(out.size())) {
    out.push_back(v);
    if (static_cast<int>(out.size()) > kMaxPoints) {
      return fail(QObject::tr("range: more than %1 points").arg(kMaxPoints));
    }
  }
  return out;
}

std::optional<double> SweepPoint::hpSpeedup() const {
  if (!has_timing || !ep.ok || !hp.ok || hp.layer_us <= 0) return std::nullopt;
  return ep.layer_us / hp.layer_us;
}

core::Expected<core::Scenario> sweepScenario(const core::Scenario& base, SweepParameter parameter, double value,
                                             QString* note) {
  core::Scenario s = base;
  auto whole = [&](const char* path) -> core::Status {
    if (!isWhole(value)) return core::Error::field(path, fmt::format("must be an integer, got {}", value));
    return core::Status::ok();
  };
  switch (parameter) {
    case SweepParameter::kTopK:
      HPSIM_TRY(whole("model.top_k"));
      s.model.top_k = static_cast<std::int64_t>(value);
      break;
    case SweepParameter::kGranularity: {
      if (!isWhole(value) || value < 1) {
        return core::Error::field("granularity", fmt::format("must be an integer >= 1, got {}", value));
      }
      const auto g = static_cast<std::int64_t>(value);
      if (base.model.expert_hidden % g != 0) {
        return core::Error::field("model.expert_hidden", fmt::format("({}) must be divisible by the granularity {}",
                                                                     base.model.expert_hidden, g));
      }
      s.model.num_experts = base.model.num_experts * g;
      s.model.top_k = base.model.top_k * g;
      s.model.expert_hidden = base.model.expert_hidden / g;
      break;
    }
    case SweepParameter::kSkew:
      if (base.workload.routing == core::Routing::kTrace && note) *note = QObject::tr("trace routing replaced");
      s.workload.trace_file.clear();
      s.workload.routing = value > 0 ? core::Routing::kZipf : core::Routing::kUniform;
      s.workload.zipf_skew = value;
      break;
    case SweepParameter::kRanks: {
      HPSIM_TRY(whole("parallel.num_ranks"));
      s.parallel.num_ranks = static_cast<std::int64_t>(value);
      const std::int64_t per_node = std::max<std::int64_t>(1, s.cluster.gpus_per_node);
      if (s.parallel.num_ranks > s.cluster.num_gpus()) {
        s.cluster.num_nodes = (s.parallel.num_ranks + per_node - 1) / per_node;
        if (note) *note = QObject::tr("cluster grown to %1 nodes").arg(s.cluster.num_nodes);
      }
      break;
    }
    case SweepParameter::kTokens:
      HPSIM_TRY(whole("workload.tokens_per_rank"));
      s.workload.tokens_per_rank = static_cast<std::int64_t>(value);
      break;
  }
  return s;
}

SweepPoint evaluateSweepPoint(const Engine& engine, const core::Scenario& base, SweepParameter parameter, int index,
                              double value) {
  SweepPoint point;
  point.index = index;
  point.value = value;
  auto scenario = sweepScenario(base, parameter, value, &point.note);
  if (!scenario) {
    point.error = QString::fromStdString(scenario.error().message);
    return point;
  }
  auto result = engine.evaluate(*scenario);
  if (!result) {
    point.error = QString::fromStdString(result.error().message);
    return point;
  }
  point.has_timing = result->has_timing;
  point.ep = side(*result, "ep");
  point.hp = side(*result, "hp");
  QStringList notes;
  if (!point.note.isEmpty()) notes << point.note;
  for (const auto& n : result->notes) {
    if (n.rfind("timing:", 0) != 0) notes << QString::fromStdString(n);  // the view says once why timing is absent
  }
  point.note = notes.join(QStringLiteral("; "));
  return point;
}

// ---- SweepRunner --------------------------------------------------------------------------------

SweepRunner::SweepRunner(QObject* parent) : QObject(parent) {
  qRegisterMetaType<hpsim::gui::SweepPoint>();
  connect(&m_watcher, &QFutureWatcher<SweepPoint>::resultReadyAt, this,
          [this](int i) { emit pointReady(m_watcher.resultAt(i)); });
  connect(&m_watcher, &QFutureWatcher<SweepPoint>::progressValueChanged, this,
          [this](int done) { emit progress(done, m_numPoints); });
  connect(&m_watcher, &QFutureWatcher<SweepPoint>::finished, this, [this] { emit finished(m_watcher.isCanceled()); });
}

SweepRunner::~SweepRunner() {
  m_watcher.cancel();
  m_watcher.waitForFinished();
}

bool SweepRunner::start(const Engine& engine, const core::Scenario& base, const SweepSpec& spec, QString* error) {
  const auto values = spec.values(error);
  if (values.empty()) return false;
  if (m_watcher.isRunning()) {
    m_watcher.cancel();
    m_watcher.waitForFinished();
  }
  m_numPoints = static_cast<int>(values.size());
  const SweepParameter parameter = spec.parameter;
  auto job = [engine, base, parameter, values](QPromise<SweepPoint>& promise) {
    promise.setProgressRange(0, static_cast<int>(values.size()));
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (promise.isCanceled()) return;
      promise.addResult(evaluateSweepPoint(engine, base, parameter, static_cast<int>(i), values[i]),
                        static_cast<int>(i));
      promise.setProgressValue(static_cast<int>(i + 1));
    }
  };
  emit started(m_numPoints);
  m_watcher.setFuture(QtConcurrent::run(job));
  return true;
}

void SweepRunner::cancel() { m_watcher.cancel(); }

// ---- SweepModel ---------------------------------------------------------------------------------

SweepModel::SweepModel(QObject* parent) : QAbstractTableModel(parent) {}

void SweepModel::reset(SweepParameter parameter) {
  beginResetModel();
  m_parameter = parameter;
  m_points.clear();
  endResetModel();
}

void SweepModel::addPoint(const SweepPoint& point) {
  auto it = std::lower_bound(m_points.begin(), m_points.end(), point.index,
                             [](const SweepPoint& p, int i) { return p.index < i; });
  const int row = static_cast<int>(it - m_points.begin());
  beginInsertRows({}, row, row);
  m_points.insert(it, point);
  endInsertRows();
}

int SweepModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(m_points.size());
}
int SweepModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : kNumColumns; }

QVariant SweepModel::value(const SweepPoint& p, int column) const {
  auto timed = [&](const SweepSide& s, double v) -> QVariant {
    return (p.has_timing && s.ok) ? QVariant(v) : QVariant();
  };
  auto plain = [&](const SweepSide& s, double v) -> QVariant { return s.ok ? QVariant(v) : QVariant(); };
  switch (column) {
    case kValueColumn:
      return p.value;
    case kEpLayerColumn:
      return timed(p.ep, p.ep.layer_us);
    case kHpLayerColumn:
      return timed(p.hp, p.hp.layer_us);
    case kSpeedupColumn: {
      auto s = p.hpSpeedup();
      return s ? QVariant(*s) : QVariant();
    }
    case kEpComputeColumn:
      return timed(p.ep, p.ep.compute_us);
    case kEpCommColumn:
      return timed(p.ep, p.ep.comm_us);
    case kHpComputeColumn:
      return timed(p.hp, p.hp.compute_us);
    case kHpCommColumn:
      return timed(p.hp, p.hp.comm_us);
    case kEpPeakColumn:
      return plain(p.ep, p.ep.peak_bytes);
    case kHpPeakColumn:
      return plain(p.hp, p.hp.peak_bytes);
    case kEpDispatchColumn:
      return plain(p.ep, p.ep.dispatch_max_bytes);
    case kHpDispatchColumn:
      return plain(p.hp, p.hp.dispatch_max_bytes);
    case kNoteColumn:
      return p.error.isEmpty() ? p.note : p.error;
    default:
      return {};
  }
}

QVariant SweepModel::data(const QModelIndex& index, int role) const {
  if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid)) return {};
  const SweepPoint& p = m_points[static_cast<std::size_t>(index.row())];
  const QVariant v = value(p, index.column());
  if (role == kValueRole || role == Qt::EditRole) return v;
  if (role == Qt::ToolTipRole && index.column() == kNoteColumn) return v;
  if (role == Qt::TextAlignmentRole && index.column() != kNoteColumn)
    return QVariant(Qt::AlignRight | Qt::AlignVCenter);
  if (role != Qt::DisplayRole) return {};
  if (index.column() == kNoteColumn) return v;
  if (!v.isValid()) return QStringLiteral("—");
  const double x = v.toDouble();
  switch (index.column()) {
    case kValueColumn:
      return formatNumber(x, 6);
    case kSpeedupColumn:
      return formatRatio(x);
    case kEpPeakColumn:
    case kHpPeakColumn:
    case kEpDispatchColumn:
    case kHpDispatchColumn:
      return formatBytes(x);
    default:
      return formatMicros(x);
  }
}

QVariant SweepModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (orientation != Qt::Horizontal || role != Qt::DisplayRole) return {};
  switch (section) {
    case kValueColumn:
      return sweepParameterSymbol(m_parameter);
    case kEpLayerColumn:
      return tr("EP layer");
    case kHpLayerColumn:
      return tr("HP layer");
    case kSpeedupColumn:
      return tr("HP speed-up");
    case kEpComputeColumn:
      return tr("EP compute");
    case kEpCommColumn:
      return tr("EP comm");
    case kHpComputeColumn:
      return tr("HP compute");
    case kHpCommColumn:
      return tr("HP comm");
    case kEpPeakColumn:
      return tr("EP peak memory");
    case kHpPeakColumn:
      return tr("HP peak memory");
    case kEpDispatchColumn:
      return tr("EP dispatch, busiest");
    case kHpDispatchColumn:
      return tr("HP dispatch, busiest");
    case kNoteColumn:
      return tr("Note");
    default:
      return {};
  }
}

}  // namespace hpsim::gui
