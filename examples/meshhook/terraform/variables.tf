variable "hcloud_token" {
  description = "Hetzner Cloud API token (read+write). Pass it as TF_VAR_hcloud_token, never in a file."
  type        = string
  sensitive   = true
}

variable "environment" {
  description = "meshdeploy environment these hosts serve; it names the servers (meshhook-<environment>-<n>)."
  type        = string
  default     = "production"
  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]*$", var.environment))
    error_message = "environment: lower-case letters, digits and '-'."
  }
}

variable "host_count" {
  description = "Number of hosts. Each runs one meshdeploy agent; put a load balancer in front (docs/hosts.md)."
  type        = number
  default     = 2
  validation {
    condition     = var.host_count >= 1 && var.host_count <= 20
    error_message = "host_count: between 1 and 20."
  }
}

variable "server_type" {
  description = "Hetzner server type (size), e.g. cx22 (2 vCPU, 4 GB), cx32, cpx31."
  type        = string
  default     = "cx22"
}

variable "location" {
  description = "Hetzner location: nbg1, fsn1, hel1, ash, hil, sin."
  type        = string
  default     = "nbg1"
}

variable "image" {
  description = "OS image; meshdeploy is built and tested on Debian 12."
  type        = string
  default     = "debian-12"
}

variable "ssh_public_key" {
  description = "Public key of the deploy user (the private half goes to the environment's vault or ssh-agent), e.g. file(\"~/.ssh/meshhook_deploy.pub\")."
  type        = string
}

variable "deploy_user" {
  description = "The user meshdeploy logs in as; it may run sudo without a password (hosts setup installs the binary and the systemd units)."
  type        = string
  default     = "deploy"
  validation {
    condition     = can(regex("^[a-z_][a-z0-9_-]{0,31}$", var.deploy_user))
    error_message = "deploy_user: a POSIX user name."
  }
}

variable "proxy_port" {
  description = "TCP port of the agent's proxy (proxy.listen / hosts[].listen in meshdeploy.yml); the only port opened besides ssh."
  type        = number
  default     = 80
}

variable "ssh_source_ips" {
  description = "CIDRs allowed to reach ssh (the controller: your CI runners, your office). Default: anywhere, key-only."
  type        = list(string)
  default     = ["0.0.0.0/0", "::/0"]
}

variable "proxy_source_ips" {
  description = "CIDRs allowed to reach the proxy port: your load balancer's addresses, or anywhere."
  type        = list(string)
  default     = ["0.0.0.0/0", "::/0"]
}
