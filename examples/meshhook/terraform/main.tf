locals {
  names = [for i in range(var.host_count) : "meshhook-${var.environment}-${i + 1}"]
}

# One ed25519 host key per server, generated here and handed to cloud-init:
# the key is known before the server first boots, so meshdeploy.yml can pin
# it (hosts[].host_key) and nobody has to trust a key on first use. The
# private half is in the Terraform state: keep the state encrypted.
resource "tls_private_key" "host" {
  count     = var.host_count
  algorithm = "ED25519"
}

resource "hcloud_firewall" "meshhook" {
  name = "meshhook-${var.environment}"

  rule {
    description = "ssh: meshdeploy's only way in"
    direction   = "in"
    protocol    = "tcp"
    port        = "22"
    source_ips  = var.ssh_source_ips
  }

  rule {
    description = "the meshdeploy agent's proxy"
    direction   = "in"
    protocol    = "tcp"
    port        = tostring(var.proxy_port)
    source_ips  = var.proxy_source_ips
  }
}

resource "hcloud_server" "host" {
  count        = var.host_count
  name         = local.names[count.index]
  server_type  = var.server_type
  image        = var.image
  location     = var.location
  firewall_ids = [hcloud_firewall.meshhook.id]
  labels = {
    app         = "meshhook"
    environment = var.environment
  }
  user_data = templatefile("${path.module}/cloud-init.yaml.tftpl", {
    deploy_user      = var.deploy_user
    ssh_public_key   = trimspace(var.ssh_public_key)
    host_key_private = tls_private_key.host[count.index].private_key_openssh
    host_key_public  = trimspace(tls_private_key.host[count.index].public_key_openssh)
    proxy_port       = var.proxy_port
  })

  public_net {
    ipv4_enabled = true
    ipv6_enabled = true
  }

  lifecycle {
    # cloud-init runs once: a changed template must not replace a live host.
    ignore_changes = [user_data]
  }
}
