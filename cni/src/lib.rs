//! knet-cni: a CNI plugin (spec 1.0/1.1) that attaches pods to a node-local bridge through veth pairs and
//! assigns addresses host-local style from ranges, with the reference plugins' configuration fields.
