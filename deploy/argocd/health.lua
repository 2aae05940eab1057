-- Argo CD health check for flowrun.dev/FlowRun.
--
-- Install under `resource.customizations.health.flowrun.dev_FlowRun` in argocd-cm (docs/gitops.md).
-- Reads what the operator writes: status.phase, status.message, status.progress,
-- status.observedGeneration and the kstatus conditions (Ready, Stalled, Reconciling).
--
--   Succeeded                      -> Healthy
--   Failed                         -> Degraded
--   Cancelled (spec.cancel: true)  -> Suspended: stopped on purpose, not broken; not Healthy either
--   Pending, Running, no status,
--   status older than the spec     -> Progressing
-- Without a phase it falls back on the conditions: Stalled=True -> Degraded, Ready=True -> Healthy.
local hs = {}

local function condition(status, type_)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == type_ then
      return c
    end
  end
  return nil
end

local function describe(status, fallback)
  if status.message ~= nil and status.message ~= "" then
    if status.progress ~= nil and status.progress ~= "" then
      return status.message .. " (" .. status.progress .. " tasks)"
    end
    return status.message
  end
  if status.progress ~= nil and status.progress ~= "" then
    return fallback .. " (" .. status.progress .. " tasks)"
  end
  return fallback
end

local status = obj.status
if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to pick the FlowRun up"
  return hs
end

local generation = obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local phase = status.phase
if phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = describe(status, "The flow run succeeded")
elseif phase == "Failed" then
  hs.status = "Degraded"
  hs.message = describe(status, "The flow run failed")
elseif phase == "Cancelled" then
  hs.status = "Suspended"
  hs.message = describe(status, "The flow run was cancelled")
elseif phase == "Pending" or phase == "Running" then
  hs.status = "Progressing"
  local fallback = "The flow run is " .. string.lower(phase)
  if obj.spec ~= nil and obj.spec.cancel == true then
    fallback = "The flow run is being cancelled"
  end
  hs.message = describe(status, fallback)
else
  local stalled = condition(status, "Stalled")
  local ready = condition(status, "Ready")
  if stalled ~= nil and stalled.status == "True" then
    hs.status = "Degraded"
    hs.message = stalled.message or "Stalled"
  elseif ready ~= nil and ready.status == "True" then
    hs.status = "Healthy"
    hs.message = ready.message or "Ready"
  else
    hs.status = "Progressing"
    hs.message = describe(status, "Waiting for the flow run to start")
  end
end
return hs
