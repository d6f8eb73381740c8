-- Argo CD health check for aifactory.dev/TrainingJob (a gang-admitted training run).
-- Reads the operator's kstatus-style status (observedGeneration; the Ready, Reconciling and Stalled
-- conditions) and status.phase, so that a finished run is Healthy and a paused one Suspended.
-- Argo CD runs it without Lua's string and math libraries, so it uses neither.
-- Install: charts/aifactory-operator/docs/gitops.md.
local function condition(kind)
  for _, c in ipairs((obj.status or {}).conditions or {}) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local status = obj.status or {}
local generation = obj.metadata.generation or 0
if (status.observedGeneration or 0) < generation then
  return {status = "Progressing", message = "waiting for the operator to observe generation " .. generation}
end
-- Stalled covers both a Failed run and a job a rule refuses (phase Refused, or a running attempt
-- the factory's rules no longer allow), so it is read before the phase: a job that cannot run must
-- not look like one waiting its turn.
local stalled, ready, reconciling = condition("Stalled"), condition("Ready"), condition("Reconciling")
if stalled ~= nil and stalled.status == "True" then
  return {status = "Degraded", message = stalled.message or status.reason or ""}
end
if status.phase == "Refused" then
  return {status = "Degraded", message = status.reason or "refused by the factory's rules"}
end
if status.phase == "Failed" then
  return {status = "Degraded", message = status.reason or "the job failed"}
end
if status.phase == "Succeeded" then
  return {status = "Healthy", message = "the job completed"}
end
-- Suspended before Ready: a suspended job is Ready=False (nothing runs) without being in progress.
if status.phase == "Suspended" or (obj.spec or {}).suspend == true then
  return {status = "Suspended", message = status.reason or "suspended"}
end
if status.phase == "Queued" then
  local waiting = status.reason or "waiting for admission"
  if status.queuePosition ~= nil then
    return {status = "Progressing", message = "queued at position " .. status.queuePosition .. ": " .. waiting}
  end
  return {status = "Progressing", message = "queued: " .. waiting}
end
if ready ~= nil and ready.status == "True" then
  return {status = "Healthy", message = ready.message or ""}
end
if reconciling ~= nil and reconciling.status == "True" then
  return {status = "Progressing", message = reconciling.message or ""}
end
return {status = "Progressing", message = "waiting for the operator to report Ready"}
