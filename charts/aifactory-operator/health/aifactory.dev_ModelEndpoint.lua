-- Argo CD health check for aifactory.dev/ModelEndpoint (a served model).
-- Reads the operator's kstatus-style status: observedGeneration and the Ready, Reconciling and
-- Stalled conditions. Argo CD runs it without Lua's string and math libraries, so it uses neither.
-- Install: charts/aifactory-operator/docs/gitops.md.
local function condition(kind)
  for _, c in ipairs((obj.status or {}).conditions or {}) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local generation = obj.metadata.generation or 0
local observed = (obj.status or {}).observedGeneration or 0
if observed < generation then
  return {status = "Progressing", message = "waiting for the operator to observe generation " .. generation}
end
local stalled, ready, reconciling = condition("Stalled"), condition("Ready"), condition("Reconciling")
if stalled ~= nil and stalled.status == "True" then
  return {status = "Degraded", message = stalled.message or ""}
end
if ready ~= nil and ready.status == "True" then
  return {status = "Healthy", message = ready.message or ""}
end
if reconciling ~= nil and reconciling.status == "True" then
  return {status = "Progressing", message = reconciling.message or ""}
end
if ready ~= nil then
  return {status = "Progressing", message = ready.message or ""}
end
return {status = "Progressing", message = "waiting for the operator to report Ready"}
