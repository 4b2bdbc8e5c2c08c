//! Certificates, tokens and kubeconfigs. (Interface stub: being implemented.)
