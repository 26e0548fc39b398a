# MeshHook's hosts on Hetzner Cloud (see README.md for why this provider).
terraform {
  required_version = ">= 1.3"
  required_providers {
    hcloud = {
      source  = "hetznercloud/hcloud"
      version = "~> 1.45"
    }
    # Host keys are made here, so `meshdeploy hosts import` knows them before
    # the first ssh connection (no trust on first use).
    tls = {
      source  = "hashicorp/tls"
      version = "~> 4.0"
    }
  }
}

provider "hcloud" {
  token = var.hcloud_token
}
